//! The dashboard's state and what keys do to it. No drawing, no terminal: the main loop feeds
//! it keys and snapshots, and the widgets in `ui` draw from it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tally_core::{AccountSort, AccountStats, Clock, Snapshot, SnapshotRequest, TypeStats, Window};
use tally_core::{HistoryView, OutputStatus, SourceStatus};

/// The panel that arrow keys move in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Panel {
    Accounts,
    Types,
}

/// What `s` steps through: rate, busiest in the window, name.
fn next_sort(sort: AccountSort) -> AccountSort {
    match sort {
        AccountSort::Rate => AccountSort::Window,
        AccountSort::Window => AccountSort::Name,
        AccountSort::Total | AccountSort::Name => AccountSort::Rate,
    }
}

/// What is on screen besides the dashboard itself.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    BadInput,
    /// DogStatsD events and service checks.
    Notices,
    /// The selected account's (or every account's) days and months, from the history.
    History,
}

#[derive(Debug)]
pub struct App {
    /// The zone the header's clock is in.
    pub clock: Clock,
    pub windows: Vec<Window>,
    pub window: usize,
    /// The latest snapshot, and the one the view is frozen on while paused.
    pub live: Snapshot,
    pub frozen: Option<Snapshot>,
    pub sources: Vec<SourceStatus>,
    /// Where events go besides the engine: the history, its Redis mirror, Graphite, a hub's
    /// publishers.
    pub outputs: Vec<OutputStatus>,
    /// What the history overlay shows: filled in by the binary while it is open (or why
    /// there is none).
    pub history: Option<Result<HistoryView, String>>,
    pub panel: Panel,
    /// Row selected in the accounts table (an index into `rows()`).
    pub selected: usize,
    /// Row selected in the types table (an index into `types()`), moved when `panel` is
    /// `Types`.
    pub type_selected: usize,
    pub sort: AccountSort,
    /// `S` turns the sort around (quietest first, names from z).
    pub reversed: bool,
    pub filter: String,
    /// The table's rows: indices into the shown snapshot's accounts, filtered and sorted.
    order: Vec<usize>,
    pub editing_filter: bool,
    /// The account the chart is drilled into (stacked by type).
    pub drill: Option<String>,
    pub overlay: Overlay,
    pub top: usize,
    pub quit: bool,
}

impl App {
    /// `windows` must not be empty; the view opens on the first.
    pub fn new(windows: Vec<Window>, first: Snapshot) -> Self {
        let mut app = App {
            clock: Clock::utc(),
            windows,
            window: 0,
            live: first,
            frozen: None,
            sources: vec![],
            outputs: vec![],
            history: None,
            panel: Panel::Accounts,
            type_selected: 0,
            selected: 0,
            sort: AccountSort::Rate,
            reversed: false,
            filter: String::new(),
            editing_filter: false,
            drill: None,
            overlay: Overlay::None,
            top: 10,
            quit: false,
            order: vec![],
        };
        app.reorder();
        app
    }

    /// What the next snapshot should hold.
    pub fn request(&self) -> SnapshotRequest {
        SnapshotRequest {
            window: self.windows[self.window],
            top: self.top,
            detail: 40,
            focus: self.drill.clone(),
            detail_for: self.selected_account().map(|a| a.name.to_string()),
            // The types panel shows all accounts' types only when no account is selected.
            all_types: self.drill.is_none() && self.selected_account().is_none(),
            // The chart shows what the table does.
            filter: (!self.filter.is_empty()).then(|| self.filter.clone()),
            ..SnapshotRequest::default()
        }
    }

    /// The snapshot drawn: the frozen one while paused.
    pub fn shown(&self) -> &Snapshot {
        self.frozen.as_ref().unwrap_or(&self.live)
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// Accounts in the table: filtered, sorted, `(other)` included.
    pub fn rows(&self) -> Vec<&AccountStats> {
        let accounts = &self.shown().accounts;
        self.order.iter().map(|&i| &accounts[i]).collect()
    }

    /// The types panel's account (drilled into, else selected) and its types; all accounts'
    /// types when there is none.
    pub fn types(&self) -> (Option<&str>, &[TypeStats]) {
        let shown = self.shown();
        let account = (self.drill.as_deref()).or_else(|| self.selected_account().map(|a| &*a.name));
        let detail = account
            .and_then(|name| shown.accounts.iter().find(|a| &*a.name == name))
            .and_then(|a| a.detail.as_ref());
        match detail {
            Some(detail) => (account, &detail.types),
            None => (None, &shown.types),
        }
    }

    pub fn selected_account(&self) -> Option<&AccountStats> {
        let index = *self.order.get(self.selected)?;
        self.shown().accounts.get(index)
    }

    /// Recomputes the table's order; after new data, a new sort or filter, pause or resume.
    fn reorder(&mut self) {
        let filter = self.filter.to_lowercase();
        self.order = self.sort.order(&self.shown().accounts, |account| {
            filter.is_empty() || account.name.to_lowercase().contains(&filter)
        });
        if self.reversed {
            self.order.reverse();
        }
        self.selected = self.selected.min(self.order.len().saturating_sub(1));
        self.type_selected = self.type_selected.min(self.types().1.len().saturating_sub(1));
    }

    pub fn update(&mut self, snapshot: Snapshot, sources: Vec<SourceStatus>) {
        self.live = snapshot;
        self.sources = sources;
        self.reorder();
    }

    pub fn handle_key(&mut self, key: KeyEvent) {
        self.apply_key(key);
        self.reorder();
    }

    fn apply_key(&mut self, key: KeyEvent) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if self.editing_filter {
            match key.code {
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.selected = 0;
            return;
        }
        if self.overlay != Overlay::None {
            // Any key closes an overlay; `q` still quits.
            self.overlay = Overlay::None;
            if key.code == KeyCode::Char('q') {
                self.quit = true;
            }
            return;
        }
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            // Esc steps back (drill-down, filter, selection) and never quits: only `q` does.
            KeyCode::Esc if self.drill.is_some() => self.drill = None,
            KeyCode::Esc if !self.filter.is_empty() => self.filter.clear(),
            KeyCode::Esc => {
                self.selected = 0;
                self.type_selected = 0;
            }
            KeyCode::Char(' ' | 'p') => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some(self.live.clone()),
                }
            }
            KeyCode::Char('+' | '=') => self.window = (self.window + 1).min(self.windows.len() - 1),
            KeyCode::Char('-' | '_') => self.window = self.window.saturating_sub(1),
            KeyCode::Tab | KeyCode::BackTab => {
                self.panel = match self.panel {
                    Panel::Accounts => Panel::Types,
                    Panel::Types => Panel::Accounts,
                }
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(10),
            KeyCode::PageUp => self.move_selection(-10),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::Enter => self.drill = self.selected_account().map(|a| a.name.to_string()),
            KeyCode::Char('/') => {
                self.editing_filter = true;
                self.filter.clear();
            }
            KeyCode::Char('s') => self.sort = next_sort(self.sort),
            KeyCode::Char('S') => self.reversed = !self.reversed,
            KeyCode::Char('b') => self.overlay = Overlay::BadInput,
            KeyCode::Char('e') => self.overlay = Overlay::Notices,
            KeyCode::Char('h') => self.overlay = Overlay::History,
            KeyCode::Char('?') => self.overlay = Overlay::Help,
            _ => {}
        }
    }

    /// Whose history `h` shows: the drilled-down or selected account (`None`: every account).
    pub fn history_account(&self) -> Option<String> {
        (self.drill.clone()).or_else(|| self.selected_account().map(|a| a.name.to_string()))
    }

    /// Moves the selection of the panel that has the focus (`tab` switches).
    pub fn move_selection(&mut self, by: isize) {
        if self.panel == Panel::Types {
            let types = self.types().1.len();
            self.type_selected = self
                .type_selected
                .saturating_add_signed(by)
                .min(types.saturating_sub(1));
            return;
        }
        let rows = self.rows().len();
        if rows == 0 {
            self.selected = 0;
            return;
        }
        self.selected = self.selected.saturating_add_signed(by).min(rows - 1);
    }
}
