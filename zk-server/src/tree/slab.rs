//! The znodes' storage: fixed-size nodes in chunks of 4,096 (no doubling spike for a
//! big tree, and a free slot is reused), addressed by `NodeId`; and the names too long
//! to sit in their node.

use super::node::{NameRef, Node, NodeId, INLINE_NAME};

/// log2 of the nodes per chunk.
const CHUNK_BITS: u32 = 12;
/// Nodes per chunk.
const CHUNK: usize = 1 << CHUNK_BITS;

/// Nodes by id, with their long names.
#[derive(Debug, Clone, Default)]
pub struct Slab {
    chunks: Vec<Vec<Node>>,
    free: Vec<NodeId>,
    live: usize,
    names: NameTable,
}

/// Names longer than [`INLINE_NAME`] bytes, by index (free indices are reused).
#[derive(Debug, Clone, Default)]
struct NameTable {
    names: Vec<Box<str>>,
    free: Vec<u32>,
}

impl Slab {
    /// The live node `id`.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        let node = self.slot(id)?;
        (!node.is_vacant()).then_some(node)
    }

    /// The live node `id`, to change.
    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        let node = self
            .chunks
            .get_mut((id >> CHUNK_BITS) as usize)?
            .get_mut(id as usize & (CHUNK - 1))?;
        (!node.is_vacant()).then_some(node)
    }

    fn slot(&self, id: NodeId) -> Option<&Node> {
        self.chunks
            .get((id >> CHUNK_BITS) as usize)?
            .get(id as usize & (CHUNK - 1))
    }

    /// Stores `node`, returning its id (`None` when every id is taken).
    pub fn insert(&mut self, node: Node) -> Option<NodeId> {
        let long = match node.name() {
            NameRef::Long(index) => Some(index),
            NameRef::Inline(_) => None,
        };
        let id = self.store(node);
        if id.is_none() {
            if let Some(index) = long {
                self.names.release(index);
            }
        }
        id
    }

    fn store(&mut self, node: Node) -> Option<NodeId> {
        if let Some(id) = self.free.pop() {
            let chunk = self.chunks.get_mut((id >> CHUNK_BITS) as usize)?;
            let slot = chunk.get_mut(id as usize & (CHUNK - 1))?;
            *slot = node;
            self.live += 1;
            return Some(id);
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::new());
        }
        let index = self.chunks.len() - 1;
        let chunk = self.chunks.last_mut()?;
        let id = NodeId::try_from(index * CHUNK + chunk.len())
            .ok()
            .filter(|id| *id != super::node::NO_NODE)?;
        if chunk.len() == chunk.capacity() {
            // The first chunk doubles (a small tree stays small); the others are
            // allocated whole at once.
            let grow = if index == 0 {
                chunk.capacity().max(4).min(CHUNK - chunk.len())
            } else {
                CHUNK - chunk.len()
            };
            chunk.reserve_exact(grow);
        }
        chunk.push(node);
        self.live += 1;
        Some(id)
    }

    /// Frees slot `id`, returning the node it held.
    pub fn remove(&mut self, id: NodeId) -> Option<Node> {
        let node = self.get_mut(id)?;
        let node = std::mem::replace(node, Node::vacant());
        self.free.push(id);
        self.live -= 1;
        if let NameRef::Long(index) = node.name() {
            self.names.release(index);
        }
        Some(node)
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Every live node with its id.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter())
            .enumerate()
            .filter(|(_, n)| !n.is_vacant())
            .map(|(i, n)| (i as NodeId, n))
    }

    /// Where `name` should be kept: in the node when short, else a new long-name
    /// entry (freed with the node).
    pub fn place_name<'a>(&mut self, name: &'a str) -> NameRef<'a> {
        if name.len() <= INLINE_NAME {
            return NameRef::Inline(name.as_bytes());
        }
        NameRef::Long(self.names.insert(name))
    }

    /// The name of `node`.
    pub fn name_of<'a>(&'a self, node: &'a Node) -> &'a [u8] {
        match node.name() {
            NameRef::Inline(bytes) => bytes,
            NameRef::Long(index) => self.names.get(index),
        }
    }

    /// The name of node `id` ("" if it is not live).
    pub fn name(&self, id: NodeId) -> &[u8] {
        self.get(id).map_or(&[], |n| self.name_of(n))
    }

    /// The name of node `id` as text.
    pub fn name_str(&self, id: NodeId) -> &str {
        std::str::from_utf8(self.name(id)).unwrap_or_default()
    }

    /// Long names held.
    pub fn long_names(&self) -> usize {
        self.names.names.len() - self.names.free.len()
    }

    /// Heap bytes: node slots (allocated, used or not), the free list, long names.
    pub fn heap_bytes(&self) -> (usize, usize) {
        let slots = self
            .chunks
            .iter()
            .map(|c| c.capacity() * std::mem::size_of::<Node>())
            .sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<Node>>()
            + self.free.capacity() * 4;
        let names = self.names.names.capacity() * std::mem::size_of::<Box<str>>()
            + self.names.names.iter().map(|n| n.len()).sum::<usize>();
        (slots, names)
    }
}

impl NameTable {
    fn insert(&mut self, name: &str) -> u32 {
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.names.get_mut(index as usize) {
                *slot = name.into();
                return index;
            }
        }
        self.names.push(name.into());
        (self.names.len() - 1) as u32
    }

    fn get(&self, index: u32) -> &[u8] {
        self.names.get(index as usize).map_or(&[], |n| n.as_bytes())
    }

    fn release(&mut self, index: u32) {
        if let Some(slot) = self.names.get_mut(index as usize) {
            *slot = "".into();
            self.free.push(index);
        }
    }
}
