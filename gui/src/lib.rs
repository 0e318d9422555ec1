//! tally's desktop dashboard (`tally-gui`): the same data as the terminal view, as live
//! `egui_plot` charts, for a laptop (interactive) or a wall screen (`--kiosk`).
//!
//! - [`state`]: what is shown and what the user chose; no drawing.
//! - [`view`]: the UI as a function of the state (laptop panels, the wall screen).
//! - [`app`]: the eframe application around them (data tick, persistence).
//! - [`theme`]: colours (the terminal view's account colours) and sizes.
//! - [`wall`]: what the wall screen shows (views, tiles), from the `[kiosk]` table.

pub mod app;
pub mod state;
pub mod theme;
pub mod view;
pub mod wall;

pub use app::GuiApp;
pub use state::{Feed, Mode, Remembered, State};
pub use wall::{KioskConfig, KioskView, Tile};
