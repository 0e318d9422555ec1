//! The eframe application: state, data tick and persistence around the views.

use crate::state::{Feed, HEARTBEAT_MS, Mode, Remembered, State, TICK_MS};
use crate::view;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// The key the user's choices are stored under.
const STORAGE_KEY: &str = "tally-gui";

#[derive(Debug)]
pub struct GuiApp {
    pub state: State,
    pub feed: Feed,
    /// Set from outside (a signal) to close the window cleanly.
    quit: Arc<AtomicBool>,
}

impl GuiApp {
    pub fn new(feed: Feed, mode: Mode, remembered: Remembered, quit: Arc<AtomicBool>) -> Self {
        GuiApp {
            state: State::new(mode, remembered, &feed),
            feed,
            quit,
        }
    }

    /// The choices stored by an earlier run, if any.
    pub fn remembered(storage: Option<&dyn eframe::Storage>) -> Remembered {
        storage
            .and_then(|s| eframe::get_value(s, STORAGE_KEY))
            .unwrap_or_default()
    }

    /// One frame: refresh, draw, and ask to be woken for the next data: by the snapshot worker
    /// when the data changed (and at least every [`HEARTBEAT_MS`] for the clock and source
    /// health), or at the next tick without a worker. Nothing repaints in between unless the
    /// user does something.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        if self.quit.load(Relaxed) {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        self.state.tick(&self.feed);
        view::show(ui, &mut self.state, &self.feed);
        let next = if self.feed.worker.is_some() {
            HEARTBEAT_MS
        } else {
            TICK_MS
        };
        ui.ctx().request_repaint_after(Duration::from_millis(next));
    }
}

impl eframe::App for GuiApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.state.remembered);
    }
}
