/** A tiny element builder over linkedom (server-side DOM; text and attributes get escaped). */
import { parseHTML as linkedomParse } from "linkedom";

export const SVG_NS = "http://www.w3.org/2000/svg";

// The subset of the DOM used here, typed locally: linkedom's own types need the "dom" lib.
export interface DomNode {
  appendChild(node: DomNode): DomNode;
  textContent: string | null;
}
export interface El extends DomNode {
  tagName: string;
  setAttribute(name: string, value: string): void;
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): ArrayLike<El>;
}
export interface Doc {
  head: El;
  body: El;
  createElement(tag: string): El;
  createElementNS(ns: string, tag: string): El;
  createTextNode(text: string): DomNode;
  querySelectorAll(selector: string): ArrayLike<El>;
  toString(): string;
}
export type Child = El | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | boolean | null | undefined>;

const parseHTML = linkedomParse as unknown as (html: string) => { document: Doc };

/** A fresh HTML document with <html lang="en">, <head> and <body>. */
export function newDocument(): Doc {
  return parseHTML(
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body></body></html>',
  ).document;
}

/** Parses HTML text (used by tests and checks to inspect a generated report). */
export function parseDocument(html: string): Doc {
  return parseHTML(html).document;
}

function fill(doc: Doc, e: El, attrs: Attrs, children: Child[]): El {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(typeof c === "object" ? c : doc.createTextNode(String(c)));
  }
  return e;
}

/** An HTML element. */
export function h(doc: Doc, tag: string, attrs: Attrs = {}, ...children: Child[]): El {
  return fill(doc, doc.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(doc: Doc, tag: string, attrs: Attrs = {}, ...children: Child[]): El {
  return fill(doc, doc.createElementNS(SVG_NS, tag), attrs, children);
}
