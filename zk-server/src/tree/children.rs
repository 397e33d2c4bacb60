//! A znode's children: their ids, sorted by name (so getChildren lists them in byte
//! order, as a sorted set would), in chunks of at most 512 so that an insert or delete
//! moves at most one chunk. About 4 bytes per child.
//!
//! Names are not stored here: comparisons ask the caller for a child's name by id.
//! Appending past the last name is the fast path (sequential and populate names).

use super::node::NodeId;

/// Ids per chunk at most.
const MAX_CHUNK: usize = 512;

/// The sorted children of one znode; never empty in a tree (a childless znode has
/// none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildList {
    len: u32,
    chunks: Vec<Vec<NodeId>>,
}

/// A position in the list: chunk and offset.
type Pos = (usize, usize);

impl ChildList {
    /// Number of children.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The id of the last child by name.
    pub fn last(&self) -> Option<NodeId> {
        self.chunks.last().and_then(|c| c.last()).copied()
    }

    /// The ids, in name order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = NodeId> + '_ {
        self.chunks.iter().flat_map(|c| c.iter().copied())
    }

    /// Where the child called `name` is (`Ok`), or where it would go (`Err`).
    pub fn find<'a>(&self, name: &[u8], name_of: impl Fn(NodeId) -> &'a [u8]) -> Result<Pos, Pos> {
        let Some(last) = self.chunks.last() else {
            return Err((0, 0));
        };
        let last_index = self.chunks.len() - 1;
        let in_last = match (last.first(), last.last()) {
            (Some(&first), Some(&end)) => {
                if name_of(end) < name {
                    return Err((last_index, last.len()));
                }
                name_of(first) <= name
            }
            _ => false,
        };
        let c = if in_last {
            last_index
        } else {
            self.chunks
                .partition_point(|chunk| chunk.last().is_none_or(|&l| name_of(l) < name))
        };
        let Some(chunk) = self.chunks.get(c) else {
            return Err((last_index, last.len()));
        };
        match chunk.binary_search_by(|&id| name_of(id).cmp(name)) {
            Ok(o) => Ok((c, o)),
            Err(o) => Err((c, o)),
        }
    }

    /// Adds child `id` called `name`; false (and no change) if a child has that name.
    pub fn insert<'a>(
        &mut self,
        id: NodeId,
        name: &[u8],
        name_of: impl Fn(NodeId) -> &'a [u8],
    ) -> bool {
        let Err((c, o)) = self.find(name, name_of) else {
            return false;
        };
        self.insert_at(c, o, id);
        true
    }

    /// Appends `id`, which the caller knows sorts after every child (loading a
    /// snapshot written in order).
    pub fn push(&mut self, id: NodeId) {
        let (c, o) = match self.chunks.last() {
            Some(last) => (self.chunks.len() - 1, last.len()),
            None => (0, 0),
        };
        self.insert_at(c, o, id);
    }

    fn insert_at(&mut self, c: usize, o: usize, id: NodeId) {
        let last_index = self.chunks.len().saturating_sub(1);
        if self.chunks.is_empty() {
            self.chunks.push(Vec::new());
        }
        let Some(chunk) = self.chunks.get_mut(c) else {
            return;
        };
        if chunk.len() < MAX_CHUNK {
            grow(chunk);
            chunk.insert(o.min(chunk.len()), id);
        } else {
            // Near the end of the last chunk (names arriving in order), the full chunk
            // stays nearly full; elsewhere it splits in halves.
            let at = if c == last_index && o >= MAX_CHUNK * 7 / 8 {
                o.min(MAX_CHUNK)
            } else {
                MAX_CHUNK / 2
            };
            let mut right = chunk.split_off(at);
            if o < at {
                chunk.insert(o, id);
            } else {
                grow(&mut right);
                right.insert(o - at, id);
            }
            self.chunks.insert(c + 1, right);
        }
        self.len += 1;
    }

    /// Removes the child called `name`, returning its id.
    pub fn remove<'a>(
        &mut self,
        name: &[u8],
        name_of: impl Fn(NodeId) -> &'a [u8],
    ) -> Option<NodeId> {
        let (c, o) = self.find(name, name_of).ok()?;
        let chunk = self.chunks.get_mut(c)?;
        let id = chunk.remove(o);
        if chunk.is_empty() {
            self.chunks.remove(c);
        } else if chunk.capacity() > 16 && chunk.len() * 4 < chunk.capacity() {
            chunk.shrink_to(chunk.len() * 2);
        }
        self.len -= 1;
        Some(id)
    }

    /// Checks that the chunks are non-empty and bounded, the count right and the names
    /// strictly ascending.
    pub fn check<'a>(&self, name_of: impl Fn(NodeId) -> &'a [u8]) -> Result<(), String> {
        if self
            .chunks
            .iter()
            .any(|c| c.is_empty() || c.len() > MAX_CHUNK)
        {
            return Err("a child chunk is empty or too big".into());
        }
        if self.iter().count() != self.len() {
            return Err(format!(
                "a child list counts {} but holds {}",
                self.len,
                self.iter().count()
            ));
        }
        let mut previous: Option<&[u8]> = None;
        for id in self.iter() {
            let name = name_of(id);
            if previous.is_some_and(|p| p >= name) {
                return Err(format!(
                    "children out of order at {:?}",
                    String::from_utf8_lossy(name)
                ));
            }
            previous = Some(name);
        }
        Ok(())
    }

    /// Heap bytes held (the chunks and their directory), not counting the list itself.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Vec<NodeId>>()
            + self.chunks.iter().map(|c| c.capacity() * 4).sum::<usize>()
    }
}

/// Room for one more id: the capacity doubles, but never past a chunk.
fn grow(chunk: &mut Vec<NodeId>) {
    if chunk.len() == chunk.capacity() {
        let more = chunk.capacity().max(4).min(MAX_CHUNK - chunk.len()).max(1);
        chunk.reserve_exact(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: u32) -> Vec<String> {
        (0..n).map(|i| format!("k{i:07}")).collect()
    }

    #[test]
    fn stays_sorted_whatever_the_insert_order() {
        let all = names(3000);
        let name_of = |id: NodeId| all[id as usize].as_bytes();
        let mut list = ChildList::default();
        // Ascending, descending, and interleaved.
        let order: Vec<u32> = (0..1000)
            .chain((1000..2000).rev())
            .chain((2000..3000).step_by(2))
            .chain((2001..3000).step_by(2))
            .collect();
        for &i in &order {
            assert!(list.insert(i, all[i as usize].as_bytes(), name_of));
        }
        assert!(!list.insert(5, all[5].as_bytes(), name_of));
        list.check(name_of).unwrap();
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            (0..3000).collect::<Vec<_>>()
        );
        for i in (0..3000).step_by(3) {
            assert_eq!(list.remove(all[i].as_bytes(), name_of), Some(i as u32));
        }
        assert_eq!(list.remove(all[0].as_bytes(), name_of), None);
        list.check(name_of).unwrap();
        assert_eq!(list.len(), 2000);
        assert!(list.find(all[4].as_bytes(), name_of).is_ok());
        assert!(list.find(all[3].as_bytes(), name_of).is_err());
    }

    #[test]
    fn names_arriving_in_order_fill_their_chunks() {
        let all = names(100_000);
        let name_of = |id: NodeId| all[id as usize].as_bytes();
        let mut list = ChildList::default();
        for i in 0..100_000u32 {
            list.insert(i, all[i as usize].as_bytes(), name_of);
        }
        list.check(name_of).unwrap();
        assert!(
            list.heap_bytes() < 100_000 * 4 * 21 / 20,
            "{}",
            list.heap_bytes()
        );
    }
}
