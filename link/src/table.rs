//! A fixed table of at most `N` entries. An entry keeps its slot while it lives, so a slot
//! number can name it elsewhere (the poll set, timers).

pub struct Table<T, const N: usize> {
    slots: [Option<T>; N],
}

impl<T, const N: usize> Table<T, N> {
    pub const fn new() -> Self {
        Table {
            slots: [const { None }; N],
        }
    }

    /// The slot of the first entry `matches` accepts.
    pub fn find(&self, matches: impl Fn(&T) -> bool) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(&matches))
    }

    /// Puts `value` in a free slot and returns it; gives the value back when full.
    pub fn insert(&mut self, value: T) -> Result<usize, T> {
        match self.slots.iter().position(Option::is_none) {
            Some(slot) => {
                self.slots[slot] = Some(value);
                Ok(slot)
            }
            None => Err(value),
        }
    }

    pub fn remove(&mut self, slot: usize) -> Option<T> {
        self.slots.get_mut(slot)?.take()
    }

    pub fn get(&self, slot: usize) -> Option<&T> {
        self.slots.get(slot)?.as_ref()
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.slots.get_mut(slot)?.as_mut()
    }

    /// Every entry with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| Some((slot, s.as_ref()?)))
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }
}

impl<T, const N: usize> Default for Table<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn entries_keep_their_slots_and_a_full_table_gives_the_value_back() {
        let mut t: Table<u32, 3> = Table::new();
        assert_eq!(t.insert(10), Ok(0));
        assert_eq!(t.insert(11), Ok(1));
        assert_eq!(t.insert(12), Ok(2));
        assert_eq!(t.insert(13), Err(13));
        assert_eq!(t.remove(1), Some(11));
        assert_eq!(t.find(|&v| v == 12), Some(2), "others keep their slots");
        assert_eq!(t.insert(14), Ok(1), "a freed slot is reused");
        assert_eq!(t.iter().collect::<Vec<_>>(), [(0, &10), (1, &14), (2, &12)]);
        assert_eq!(t.get(5), None);
        assert_eq!(t.remove(7), None);
        *t.get_mut(0).unwrap() += 1;
        assert_eq!(t.values().copied().collect::<Vec<_>>(), [11, 14, 12]);
    }
}
