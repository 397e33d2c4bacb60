//! One shared copy of each distinct ACL, counted by the znodes that use it (as
//! ZooKeeper's `ReferenceCountedACLCache`): a znode keeps a 4-byte index, and an ACL no
//! znode uses any more is dropped at once.

use std::collections::HashMap;
use std::sync::Arc;

use zk_proto::Acl;

/// ACLs by index, with reference counts.
#[derive(Debug, Clone, Default)]
pub struct AclTable {
    slots: Vec<Option<(Arc<[Acl]>, u32)>>,
    by_acl: HashMap<Arc<[Acl]>, u32>,
    free: Vec<u32>,
    /// What a missing index reads as.
    none: Arc<[Acl]>,
}

impl AclTable {
    /// The index of `acl`, counting one more user.
    pub fn acquire(&mut self, acl: &[Acl]) -> u32 {
        if let Some(&index) = self.by_acl.get(acl) {
            self.retain(index);
            return index;
        }
        let shared: Arc<[Acl]> = acl.into();
        let entry = Some((shared.clone(), 1));
        let index = match self.free.pop() {
            Some(index) => {
                if let Some(slot) = self.slots.get_mut(index as usize) {
                    *slot = entry;
                }
                index
            }
            None => {
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_acl.insert(shared, index);
        index
    }

    /// Counts one more user of `index`.
    pub fn retain(&mut self, index: u32) {
        if let Some(Some((_, refs))) = self.slots.get_mut(index as usize) {
            *refs += 1;
        }
    }

    /// Counts one user fewer of `index`, dropping the ACL when none is left.
    pub fn release(&mut self, index: u32) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        let Some((acl, refs)) = slot else {
            return;
        };
        *refs -= 1;
        if *refs == 0 {
            self.by_acl.remove(&**acl);
            *slot = None;
            self.free.push(index);
        }
    }

    /// The ACL at `index`.
    pub fn get(&self, index: u32) -> &Arc<[Acl]> {
        match self.slots.get(index as usize) {
            Some(Some((acl, _))) => acl,
            _ => &self.none,
        }
    }

    /// The users counted for `index` (0 when free).
    #[cfg(test)]
    pub fn refs(&self, index: u32) -> u32 {
        match self.slots.get(index as usize) {
            Some(Some((_, refs))) => *refs,
            _ => 0,
        }
    }

    /// Every ACL in use with its index and users.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Arc<[Acl]>, u32)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|(acl, refs)| (i as u32, acl, *refs)))
    }

    /// Checks that the lookup map and the slots agree.
    pub fn check(&self) -> Result<(), String> {
        if self.by_acl.len() != self.iter().count() {
            return Err(format!(
                "ACL table: {} ACLs by value, {} by index",
                self.by_acl.len(),
                self.iter().count()
            ));
        }
        for (index, acl, _) in self.iter() {
            if self.by_acl.get(&**acl) != Some(&index) {
                return Err(format!("ACL {index} is not found by value"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_acls_share_an_index_until_the_last_user_goes() {
        let mut t = AclTable::default();
        let open = t.acquire(&Acl::open_unsafe());
        let read = t.acquire(&Acl::read_unsafe());
        assert_eq!(t.acquire(&Acl::open_unsafe()), open);
        assert_eq!(t.refs(open), 2);
        t.release(open);
        t.release(open);
        assert_eq!(t.refs(open), 0);
        assert!(t.get(open).is_empty());
        // The freed index is reused.
        assert_eq!(t.acquire(&Acl::creator_all()), open);
        assert_eq!(&**t.get(read), &Acl::read_unsafe()[..]);
        t.check().unwrap();
    }
}
