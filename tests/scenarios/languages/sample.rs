//! A tiny ring buffer.

use std::fmt;

/// Fixed-capacity ring buffer.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: Vec<Option<T>>,
    head: usize,
    len: usize,
}

impl<T: Clone> Ring<T> {
    /// Creates an empty ring with `capacity` slots.
    pub fn new(capacity: usize) -> Self {
        Ring { items: vec![None; capacity], head: 0, len: 0 }
    }

    pub fn push(&mut self, value: T) {
        let cap = self.items.len();
        let idx = (self.head + self.len) % cap;
        self.items[idx] = Some(value);
        if self.len < cap {
            self.len += 1;
        } else {
            self.head = (self.head + 1) % cap;
        }
    }
}

impl<T> fmt::Display for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ring(len={})", self.len)
    }
}

pub trait Drain {
    fn drain_all(&mut self) -> usize;
}

pub enum Mode {
    Overwrite,
    Reject,
}

mod tests {
    fn helper() -> u8 {
        1
    }
}
