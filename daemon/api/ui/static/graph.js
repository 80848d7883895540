// The link graph of one project, drawn by cytoscape.js: clusters coloured, largest components
// first (the daemon caps the nodes and places them: a preset layout), a click opens the
// memory's page. Styles are plain per-class values, no per-element mapping: with 5,000 nodes,
// resolving styles costs the first frame as much as building the graph.
"use strict";

const PALETTE = ["#2457c5", "#c5244f", "#1f9d55", "#d97706", "#7c3aed", "#0891b2",
                 "#be185d", "#4d7c0f", "#b45309", "#1e40af", "#9f1239", "#047857"];

function elements(graph) {
  const nodes = graph.nodes.map((n) => ({
    data: {id: String(n.id), label: `#${n.id}`, text: n.text || "", cluster: n.cluster},
    position: {x: n.x, y: n.y},
    classes: n.cluster == null ? "" : `c${n.cluster % PALETTE.length}`}));
  const edges = graph.edges.map(([a, b, similarity]) => ({data: {
    id: `${a}-${b}`, source: String(a), target: String(b), similarity}}));
  return nodes.concat(edges);
}

const LABEL_ZOOM = 0.75;  // from here an 8 px label is drawn at 6 px or more: readable

// Labels only once they are readable: a label in the stylesheet is measured for every node
// even when it is too small to draw, which cost the first frame about a quarter of its time.
function styles(labelled) {
  const node = {"background-color": "#9ca3af", "font-size": 8, "width": 14, "height": 14};
  return [
    {selector: "node", style: labelled ? {...node, "label": "data(label)"} : node},
    ...PALETTE.map((color, i) => ({selector: `.c${i}`, style: {"background-color": color}})),
    {selector: "edge", style: {"width": 1, "line-color": "#cbd5e1", "curve-style": "haystack"}},
  ];
}

function labelWhenReadable(cy) {
  let labelled = false;
  const update = () => {
    if ((cy.zoom() >= LABEL_ZOOM) !== labelled) {
      labelled = !labelled;
      cy.style(styles(labelled));
    }
  };
  update();
  cy.on("zoom", update);
}

async function drawGraph(holder) {
  performance.mark("graph-start");
  const project = holder.dataset.project;
  const response = await fetch("/ui/graph.json?project=" + encodeURIComponent(project),
                               {credentials: "same-origin"});
  const graph = await response.json();
  performance.mark("graph-fetched");
  document.getElementById("graph-summary").textContent =
    `${graph.shown} of ${graph.total} linked memories, ${graph.components} components`;
  const cy = cytoscape({
    container: holder,
    elements: elements(graph),
    style: styles(false),
    layout: {name: "preset"},
    maxZoom: 2,
  });
  labelWhenReadable(cy);
  cy.on("tap", "node", (event) => { location.href = "/ui/memories/" + event.target.id(); });
  window.memlaneGraph = cy;
  // Once the first frame is painted (the frame after the one that draws it): fetched, laid
  // out, modelled and painted. Benches read the measures, tests and benches wait on the mark.
  requestAnimationFrame(() => requestAnimationFrame(() => {
    performance.measure("graph", "graph-start");
    performance.measure("graph-fetch", "graph-start", "graph-fetched");
    holder.dataset.nodes = String(cy.nodes().length);
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  const holder = document.getElementById("graph");
  if (holder) drawGraph(holder);
});
