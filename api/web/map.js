// The fleetpulse fleet map (docs/map.md). Plain JavaScript over Leaflet; no build step.
// The bearer token lives in sessionStorage only (gone when the tab closes) and is sent only in the
// Authorization header, never in a URL. Every value from the API is put in the page as text.
"use strict";
(function () {
  const settings = JSON.parse(document.getElementById("fleetmap-settings").textContent);
  const TOKEN_KEY = "fleetpulse.token";
  const SERIOUS = ["CRITICAL", "MAJOR"]; // red on the map; other active alarms orange
  const HAZARD_COLOURS = { pothole: "#6d4c41", slippery: "#00acc1", junction: "#8e24aa" };
  const $ = (id) => document.getElementById(id);

  const map = L.map("map", { preferCanvas: false, zoomControl: true }).setView([0, 0], 2);
  const svg = L.svg(); // vehicles and hazards: one DOM element each, with data attributes
  const canvas = L.canvas(); // roads: many lines, no need for elements
  const roadLayer = L.layerGroup().addTo(map);
  const hazardLayer = L.layerGroup().addTo(map);
  const vehicleLayer = L.layerGroup().addTo(map);
  const centreLayer = L.layerGroup().addTo(map);
  if (settings.tileUrl) {
    L.tileLayer(settings.tileUrl, { attribution: settings.tileAttribution, maxZoom: 19 }).addTo(map);
  }
  let vehicles = [];
  let drawTicket = 0; // only the newest view request draws: moves can overtake each other
  let refreshing = false; // while the vehicles load, moves wait: the refresh draws at its end

  class Unauthorised extends Error {}

  async function api(url, params) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== "" && v != null) query.set(k, v);
    const response = await fetch(query.toString() ? `${url}?${query}` : url, {
      headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` },
      cache: "no-store",
    });
    if (response.status === 401) throw new Unauthorised("the token was not accepted");
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  function setStatus(state, text) {
    $("status").dataset.state = state;
    $("status").textContent = text;
  }

  function text(lines) {
    const div = document.createElement("div");
    for (const line of lines) {
      const p = document.createElement("div");
      p.textContent = line;
      div.appendChild(p);
    }
    return div;
  }

  function tag(layer, data) {
    const el = layer.getElement && layer.getElement();
    if (el) for (const [k, v] of Object.entries(data)) el.dataset[k] = v == null ? "" : String(v);
  }

  // The box to ask for: the view, cut to the largest box the API takes, around the view's centre.
  function viewBox() {
    const b = map.getBounds();
    const c = b.getCenter();
    const half = settings.maxSpanDeg / 2 - 1e-9;
    const clip = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
    const box = {
      min_lon: clip(Math.max(b.getWest(), c.lng - half), -180, 180),
      min_lat: clip(Math.max(b.getSouth(), c.lat - half), -90, 90),
      max_lon: clip(Math.min(b.getEast(), c.lng + half), -180, 180),
      max_lat: clip(Math.min(b.getNorth(), c.lat + half), -90, 90),
    };
    const cut = box.max_lon - box.min_lon < b.getEast() - b.getWest() - 1e-6;
    return { box, cut };
  }

  function colourOf(alarms) {
    if (alarms.some((a) => SERIOUS.includes(a.severity))) return "#d32f2f";
    return alarms.length ? "#ef6c00" : "#1565c0";
  }

  function vehicleShown(f) {
    const p = f.properties;
    const fleet = $("filter-fleet").value, centre = $("filter-centre").value, alarm = $("filter-alarm").value;
    if (fleet && p.fleet_id !== fleet) return false;
    if (centre && p.service_centre_id !== centre) return false;
    if (alarm === "*") return p.alarms.length > 0;
    return !alarm || p.alarms.some((a) => a.fault === alarm);
  }

  function drawVehicles() {
    vehicleLayer.clearLayers();
    let shown = 0;
    for (const f of vehicles) {
      if (!f.geometry || !vehicleShown(f)) continue;
      const p = f.properties;
      const [lon, lat] = f.geometry.coordinates;
      const marker = L.circleMarker([lat, lon], {
        renderer: svg, radius: 6, weight: 1, color: "#fff", fillColor: colourOf(p.alarms), fillOpacity: 0.95,
        className: "vehicle",
      }).addTo(vehicleLayer);
      marker.bindTooltip(text([
        p.vehicle_id, `fleet: ${p.fleet_id || "-"}`, `centre: ${p.service_centre_id || "-"}`,
        ...p.alarms.map((a) => `${a.severity}: ${a.fault}`),
      ]));
      tag(marker, {
        vehicleId: p.vehicle_id, fleetId: p.fleet_id, centreId: p.service_centre_id,
        faults: p.alarms.map((a) => a.fault).join(" "),
      });
      shown += 1;
    }
    $("map").dataset.vehiclesShown = shown;
    return shown;
  }

  async function drawView() {
    const ticket = ++drawTicket;
    const { box, cut } = viewBox();
    const kind = $("filter-hazard").value;
    const [roads, hazards] = await Promise.all([
      api(settings.urls.roads, box),
      api(settings.urls.hazards, { ...box, kind }),
    ]);
    if (ticket !== drawTicket) return null;
    roadLayer.clearLayers();
    L.geoJSON(roads, {
      renderer: canvas,
      interactive: false,
      style: (f) => ({ color: "#9aa3ad", weight: f.properties.road_class === "highway" ? 4 : f.properties.road_class === "arterial" ? 3 : 1.5 }),
    }).addTo(roadLayer);
    hazardLayer.clearLayers();
    L.geoJSON(hazards, {
      renderer: svg,
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 9, renderer: svg }),
      style: (f) => ({
        color: HAZARD_COLOURS[f.properties.kind], weight: 5, fillColor: "#fff", fillOpacity: 0.6, className: "hazard",
      }),
      onEachFeature: (f, layer) => {
        const p = f.properties;
        layer.bindTooltip(text([
          `${p.kind} (${p.state})`, `confidence ${p.confidence}`, `${p.vehicles} vehicles, ${p.events} events`,
          `last seen ${p.last_seen_hour || "-"}`,
        ]));
        layer.on("add", () => tag(layer, { hazardId: p.id, hazardKind: p.kind, confidence: p.confidence }));
      },
    }).addTo(hazardLayer);
    $("map").dataset.hazardsShown = hazards.features.length;
    const notes = [];
    if (cut) notes.push("zoomed out beyond the largest box: roads and hazards shown around the centre");
    if (hazards.truncated || roads.truncated) notes.push("more data than one request holds: zoom in");
    return notes;
  }

  function fillSelect(select, values) {
    const keep = select.value;
    while (select.options.length > (select.id === "filter-alarm" ? 2 : 1)) select.remove(select.options.length - 1);
    for (const v of [...new Set(values)].filter(Boolean).sort()) select.add(new Option(v, v));
    select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
  }

  async function drawAlarmCounts() {
    const counts = await api(settings.urls.alarmCounts, { fleet_id: $("filter-fleet").value });
    const body = $("alarm-counts").tBodies[0];
    body.replaceChildren();
    for (const c of counts.items) {
      const row = body.insertRow();
      row.dataset.centreId = c.service_centre_id;
      row.dataset.total = c.total;
      const cells = [c.name || c.service_centre_id, c.active.CRITICAL, c.active.MAJOR, c.active.MINOR, c.active.WARNING, c.total];
      cells.forEach((v, i) => {
        const cell = row.insertCell();
        cell.textContent = String(v);
        if (i === 0) cell.title = String(v);
        if (i > 0 && i < 3 && v > 0) cell.className = "hot";
      });
    }
    fillSelect($("filter-centre"), counts.items.map((c) => c.service_centre_id));
    drawCentres(counts.items);
    return counts.items;
  }

  // Each centre as a labelled box on the map: its active alarms (all severities).
  function drawCentres(items) {
    centreLayer.clearLayers();
    for (const c of items) {
      if (c.lat == null || c.lon == null) continue;
      const label = document.createElement("div");
      label.className = c.total > 0 ? "centre-label alarmed" : "centre-label";
      label.textContent = `${c.name || c.service_centre_id}: ${c.total}`;
      label.dataset.centreMarker = c.service_centre_id;
      L.marker([c.lat, c.lon], {
        icon: L.divIcon({ html: label, className: "centre", iconSize: null }),
        keyboard: false,
      }).addTo(centreLayer);
    }
  }

  function startBounds(centres, extent) {
    const points = vehicles.filter((f) => f.geometry).map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0]]);
    for (const c of centres) if (c.lat != null && c.lon != null) points.push([c.lat, c.lon]);
    if (points.length) return L.latLngBounds(points).pad(0.15);
    if (extent.bbox) return L.latLngBounds([extent.bbox[1], extent.bbox[0]], [extent.bbox[3], extent.bbox[2]]);
    return null;
  }

  async function refresh(fit) {
    setStatus("loading", "loading…");
    refreshing = true;
    drawTicket += 1; // a view being drawn now is drawn again at the end
    try {
      const [positions, extent, centres] = await Promise.all([
        api(settings.urls.vehicles), api(settings.urls.roadExtent), drawAlarmCounts(),
      ]);
      vehicles = positions.features;
      fillSelect($("filter-fleet"), vehicles.map((f) => f.properties.fleet_id));
      fillSelect($("filter-alarm"), vehicles.flatMap((f) => f.properties.alarms.map((a) => a.fault)));
      const bounds = fit ? startBounds(centres, extent) : null;
      if (bounds) map.fitBounds(bounds, { animate: false });
    } catch (err) {
      refreshing = false;
      fail(err);
      return;
    }
    refreshing = false;
    await redraw();
  }

  async function redraw() {
    if (refreshing) return;
    setStatus("loading", "loading…");
    try {
      const shown = drawVehicles();
      const notes = await drawView();
      if (notes === null) return; // a newer view is being drawn
      const unplaced = vehicles.filter((f) => !f.geometry).length;
      const parts = [`${shown} vehicles shown`, `${$("map").dataset.hazardsShown} hazards in view`];
      if (unplaced) parts.push(`vehicles without a position: ${unplaced}`);
      setStatus("ready", [...parts, ...notes].join("; "));
    } catch (err) {
      fail(err);
    }
  }

  function fail(err) {
    if (err instanceof Unauthorised) {
      signOut(err.message);
    } else {
      setStatus("error", String(err.message || err));
    }
  }

  function signedIn(yes) {
    $("login").hidden = yes;
    $("session").hidden = !yes;
    $("panel").hidden = !yes;
    $("whoami").textContent = yes ? "signed in" : "";
    map.invalidateSize();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    vehicles = [];
    for (const layer of [vehicleLayer, hazardLayer, roadLayer, centreLayer]) layer.clearLayers();
    $("alarm-counts").tBodies[0].replaceChildren();
    $("login-error").textContent = message || "";
    setStatus("idle", "");
    signedIn(false);
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    $("login-error").textContent = "";
    start();
  });
  $("logout").addEventListener("click", () => signOut(""));
  $("filter-fleet").addEventListener("change", async () => {
    setStatus("loading", "loading…");
    try {
      await drawAlarmCounts();
      await redraw();
    } catch (err) {
      fail(err);
    }
  });
  for (const id of ["filter-centre", "filter-alarm"]) {
    $(id).addEventListener("change", () => {
      drawVehicles();
      setStatus("ready", `${$("map").dataset.vehiclesShown} vehicles shown`);
    });
  }
  $("filter-hazard").addEventListener("change", redraw);
  map.on("moveend", () => { if (sessionStorage.getItem(TOKEN_KEY)) redraw(); });

  function start() {
    refreshing = true; // showing the panel resizes the map: its move must not draw an empty view
    signedIn(true);
    refresh(true);
  }

  if (sessionStorage.getItem(TOKEN_KEY)) {
    start();
  } else {
    signedIn(false);
  }
})();
