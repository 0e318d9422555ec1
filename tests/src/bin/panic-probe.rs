//! Takes the terminal the way `tally` does, then panics when a key is pressed. `tally` has no way
//! to panic on request (and should not have one), so the terminal tests use this to check that a
//! panic gives the terminal back: the same `Session`, the same panic hook.

use crossterm::event::{self, Event};
use tally_tui::terminal::Session;

fn main() -> std::io::Result<()> {
    let mut session = Session::enter()?;
    session.terminal().draw(|frame| {
        frame.render_widget("panic probe: press a key to panic", frame.area());
    })?;
    loop {
        if let Event::Key(_) = event::read()? {
            panic!("the panic probe panicked on purpose");
        }
    }
}
