// Charts for the console's pages: TradingView's Lightweight Charts (vendored in
// vendor/lightweight-charts/), in the console's look and within its
// Content-Security-Policy. The library's own attribution logo injects an inline
// <style> element, which the policy refuses; so the logo is off and the attribution
// its licence asks for is a link under each chart instead.

import * as lc from "../vendor/lightweight-charts/lightweight-charts.standalone.production.mjs";
import { h } from "./ui.js";

export { lc };

/**
 * A chart in `container` (appended): the library's `IChartApi`, sized to the
 * container's width and the `.chart-canvas` height of the stylesheet (`height`
 * overrides it through the chart's own options). `options` go to `createChart`.
 */
export function chart(container, options = {}) {
  const canvas = h("div", { class: "chart-canvas" });
  const credit = h(
    "a",
    { class: "chart-credit", href: "https://www.tradingview.com/", target: "_blank", rel: "noopener noreferrer" },
    "Charts by TradingView Lightweight Charts™",
  );
  container.append(h("figure", { class: "chart" }, canvas, credit));
  const font = getComputedStyle(document.body).fontFamily;
  return lc.createChart(canvas, {
    autoSize: true,
    ...options,
    layout: {
      attributionLogo: false,
      background: { type: lc.ColorType.Solid, color: "#ffffff" },
      textColor: "#475467",
      fontFamily: font,
      fontSize: 12,
      ...(options.layout || {}),
    },
    grid: {
      vertLines: { color: "#f2f4f7" },
      horzLines: { color: "#f2f4f7" },
      ...(options.grid || {}),
    },
    rightPriceScale: { borderColor: "#e3e6eb", ...(options.rightPriceScale || {}) },
    timeScale: { borderColor: "#e3e6eb", ...(options.timeScale || {}) },
  });
}
