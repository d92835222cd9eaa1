//! Encoders: one per text format slipway generates from user values, each
//! either writing a value so that it arrives byte-exact in the field it was
//! meant for, or refusing it.
//!
//! | format | encoder | what it refuses |
//! | --- | --- | --- |
//! | POSIX shell word | [`crate::vm::shell::quote`] | NUL (no shell word holds one) |
//! | ssh destinations, options and config words | [`ssh`] | anything but the grammar of a host, user or plain path |
//! | systemd unit files | [`systemd`] | NUL and, outside `Environment=`, newlines |
//! | terminal and markdown text | [`text`] | nothing: control characters are shown escaped |
//!
//! The front end (`config::load`) calls the same checks at validate time, so a
//! value an encoder would refuse is a located configuration error before any
//! plan exists. The encoders check again anyway: they never trust their caller.
//! Nothing here does I/O.

pub mod ssh;
pub mod systemd;
pub mod text;
