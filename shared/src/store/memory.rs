//! In-memory fakes of the storage ports, for unit tests of domain logic.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{NotificationCounts, StoreError};
use crate::domain::UserId;

#[derive(Default)]
pub struct MemoryNotifications {
    unread: Mutex<HashMap<UserId, u64>>,
}

impl MemoryNotifications {
    pub fn set_unread(&self, user: &UserId, count: u64) {
        if let Ok(mut map) = self.unread.lock() {
            map.insert(user.clone(), count);
        }
    }
}

impl NotificationCounts for MemoryNotifications {
    async fn unread_count(&self, user: &UserId) -> Result<u64, StoreError> {
        let map = self
            .unread
            .lock()
            .map_err(|_| StoreError::Dynamo("memory store poisoned".into()))?;
        Ok(map.get(user).copied().unwrap_or(0))
    }
}
