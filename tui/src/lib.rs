//! tally's terminal dashboard: state and input ([`app`]), widgets ([`ui`]), colours
//! ([`theme`]) and the terminal itself ([`terminal`]). The binary (`tally`) runs it against a
//! live collector.

pub mod app;
pub mod terminal;
pub mod theme;
pub mod ui;
