//! The eframe application: state, data tick and persistence around the views.

use crate::state::{Feed, Mode, Remembered, State, TICK_MS};
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

    /// One frame: refresh at the data tick, draw, and ask to be woken at the next tick only
    /// (nothing repaints in between unless the user does something).
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        if self.quit.load(Relaxed) {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        self.state.tick(&self.feed);
        view::show(ui, &mut self.state, &self.feed);
        ui.ctx().request_repaint_after(Duration::from_millis(TICK_MS));
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
