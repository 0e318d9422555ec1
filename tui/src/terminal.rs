//! The terminal while the dashboard has it, and giving it back.
//!
//! The dashboard puts the terminal in raw mode, on the alternate screen, with mouse reporting.
//! Whatever ends it (quit, an error, a signal turned into a quit, a panic) must undo all three,
//! or the user is left in a shell that echoes nothing and prints mouse escapes on every move.
//! [`Session`] restores on drop; on a panic, a hook restores before the panic message is
//! printed, so the message lands on the normal screen where it can be read.

use crossterm::cursor::Show;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::backend::CrosstermBackend;
use ratatui::{DefaultTerminal, Terminal};
use std::io::stdout;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

/// Whether the terminal is ours to give back. Restoring twice would leave the alternate screen
/// twice, and the second time moves the cursor back to where the dashboard started, so the
/// shell's prompt would overwrite a panic's message.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The terminal, taken over until this is dropped.
pub struct Session {
    terminal: DefaultTerminal,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    /// Raw mode, the alternate screen and mouse capture, with restoration armed first.
    pub fn enter() -> std::io::Result<Session> {
        restore_on_panic();
        TAKEN.store(true, SeqCst);
        match take() {
            Ok(terminal) => Ok(Session { terminal }),
            Err(error) => {
                restore();
                Err(error)
            }
        }
    }

    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        restore();
    }
}

fn take() -> std::io::Result<DefaultTerminal> {
    enable_raw_mode()?;
    crossterm::execute!(stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    Terminal::new(CrosstermBackend::new(stdout()))
}

/// Mouse capture off, the normal screen, the cursor shown and raw mode off, once. Errors are
/// ignored: there is nothing better to do with a terminal that cannot be written to.
fn restore() {
    if TAKEN.swap(false, SeqCst) {
        let _ = crossterm::execute!(stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
    }
}

/// Wraps the panic hook (once per process) so that the terminal is restored before the
/// previous hook prints the message.
fn restore_on_panic() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
