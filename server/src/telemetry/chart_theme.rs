//! The colours and type of the charts drawn on the server (fleet series, ROI): the dark
//! theme of `style/main.css`, with lines and text heavy enough to read on a wall screen.
//! Printing turns them light again (a CSS filter in `@media print`).

use plotters::style::RGBColor;

/// The chart's background: the pages' panels (`--panel`).
pub const BACKGROUND: RGBColor = RGBColor(0x17, 0x20, 0x29);
/// Grid lines (`--line`).
pub const GRID: RGBColor = RGBColor(0x2b, 0x3a, 0x47);
/// Titles and legend text (`--text`).
pub const INK: RGBColor = RGBColor(0xe6, 0xed, 0xf3);
/// Axis labels and notes (`--muted`).
pub const MUTED: RGBColor = RGBColor(0x8b, 0x9b, 0xab);
/// First series (`--accent`).
pub const BLUE: RGBColor = RGBColor(0x4a, 0xa3, 0xff);
/// Good: hits, value (`--ok`).
pub const GREEN: RGBColor = RGBColor(0x3f, 0xb9, 0x50);
/// Caution: p95, utilisation (`--warn`).
pub const AMBER: RGBColor = RGBColor(0xd2, 0x99, 0x22);
/// Bad: p99, errors, cost (`--bad`).
pub const RED: RGBColor = RGBColor(0xf8, 0x51, 0x49);
/// The font family of every text.
pub const FONT: &str = "sans-serif";
/// Caption size.
pub const CAPTION_SIZE: u32 = 18;
/// Axis label and legend size.
pub const LABEL_SIZE: u32 = 14;
/// Width of a series line.
pub const LINE_WIDTH: u32 = 3;
