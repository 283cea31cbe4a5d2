//! Key builders. Numbers are big-endian so that sled's byte order is time order (sled's README:
//! little endian "will often appear to be doing the right thing until you start working with
//! more than 256 items").

use crate::domain::service::CallbackState;
use crate::domain::time::Timestamp;

/// Separates a variable-length prefix from what follows. Field values never contain NUL
/// (request parsing refuses control characters in the fields used in keys).
const SEP: u8 = 0;

/// `at (u64 BE) ++ id`: the key of the time-ordered index trees.
pub fn time_key(at: Timestamp, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + id.len());
    key.extend_from_slice(&at.as_millis().to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// Splits a [`time_key`] back into its time and id.
pub fn split_time_key(key: &[u8]) -> Option<(Timestamp, &str)> {
    let (at, id) = key.split_at_checked(8)?;
    let millis = u64::from_be_bytes(at.try_into().ok()?);
    Some((
        Timestamp::from_millis(millis),
        std::str::from_utf8(id).ok()?,
    ))
}

/// The first key after every [`time_key`] at or before `at`.
pub fn time_upper_bound(at: Timestamp) -> Vec<u8> {
    (at.as_millis().saturating_add(1)).to_be_bytes().to_vec()
}

/// `customer_number ++ 0 ++ id`.
pub fn customer_key(customer_number: &str, id: &str) -> Vec<u8> {
    let mut key = customer_prefix(customer_number);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The prefix of every [`customer_key`] of one customer.
pub fn customer_prefix(customer_number: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(customer_number.len() + 40);
    key.extend_from_slice(customer_number.as_bytes());
    key.push(SEP);
    key
}

/// `service_name ++ 0 ++ state code ++ id`.
pub fn service_state_key(service_name: &str, state: CallbackState, id: &str) -> Vec<u8> {
    let mut key = service_prefix(service_name);
    key.push(state.code());
    key.extend_from_slice(id.as_bytes());
    key
}

/// The prefix of every [`service_state_key`] of one configured service.
pub fn service_prefix(service_name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(service_name.len() + 40);
    key.extend_from_slice(service_name.as_bytes());
    key.push(SEP);
    key
}

/// Splits a [`service_state_key`] into service name, state and id.
pub fn split_service_state_key(key: &[u8]) -> Option<(&str, CallbackState, &str)> {
    let sep = key.iter().position(|b| *b == SEP)?;
    let name = std::str::from_utf8(&key[..sep]).ok()?;
    let state = CallbackState::from_code(*key.get(sep + 1)?)?;
    let id = std::str::from_utf8(key.get(sep + 2..)?).ok()?;
    Some((name, state, id))
}

/// `owner ++ 0 ++ service_name ++ 0 ++ id`: one user's services, grouped by configured
/// service, so the per-service query reads only the asker's own.
pub fn owner_key(owner: &str, service_name: &str, id: &str) -> Vec<u8> {
    let mut key = owner_prefix(owner, service_name);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The prefix of every [`owner_key`] of one user and one configured service.
pub fn owner_prefix(owner: &str, service_name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(owner.len() + service_name.len() + 40);
    key.extend_from_slice(owner.as_bytes());
    key.push(SEP);
    key.extend_from_slice(service_name.as_bytes());
    key.push(SEP);
    key
}

/// The id at the end of an [`owner_key`] (after its second separator).
pub fn id_after_owner_prefix(key: &[u8]) -> Option<&str> {
    let first = key.iter().position(|b| *b == SEP)?;
    let rest = &key[first + 1..];
    let second = rest.iter().position(|b| *b == SEP)?;
    std::str::from_utf8(&rest[second + 1..]).ok()
}

/// The prefix of every [`service_state_key`] of one configured service in one state.
pub fn service_state_prefix(service_name: &str, state: CallbackState) -> Vec<u8> {
    let mut key = service_prefix(service_name);
    key.push(state.code());
    key
}

/// The first key after every key that starts with `prefix` (`None`: there is none).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// `service id ++ 0 ++ seq (u64 BE)`: one of a service's entries, in the order they were
/// added: its notifications and agent notifications, its routing history, its status outbox.
pub fn service_seq_key(service_id: &str, seq: u64) -> Vec<u8> {
    let mut key = service_seq_prefix(service_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The prefix of every [`service_seq_key`] of one service.
pub fn service_seq_prefix(service_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(service_id.len() + 9);
    key.extend_from_slice(service_id.as_bytes());
    key.push(SEP);
    key
}

/// The service id of a [`service_seq_key`].
pub fn service_of_seq_key(key: &[u8]) -> Option<&str> {
    let (id, rest) = key.split_at(key.len().checked_sub(9)?);
    if rest[0] != SEP {
        return None;
    }
    std::str::from_utf8(id).ok()
}

/// `session id ++ 0 ++ position (u64 BE)`: a transcript event.
pub fn transcript_key(session_id: &str, position: u64) -> Vec<u8> {
    service_seq_key(session_id, position)
}

/// The prefix of every [`transcript_key`] of one chat session.
pub fn transcript_prefix(session_id: &str) -> Vec<u8> {
    service_seq_prefix(session_id)
}

/// `gms_user ++ 0 ++ seq (u64 BE)`: one user's undelivered comet notifications in order.
pub fn undelivered_key(gms_user: &str, seq: u64) -> Vec<u8> {
    let mut key = undelivered_prefix(gms_user);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The prefix of every [`undelivered_key`] of one user.
pub fn undelivered_prefix(gms_user: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(gms_user.len() + 9);
    key.extend_from_slice(gms_user.as_bytes());
    key.push(SEP);
    key
}

/// The sequence number at the end of a [`service_seq_key`] or an [`undelivered_key`].
pub fn seq_at_end(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key[start..].try_into().ok()?))
}

/// `agent ++ 0 ++ id`: the services one agent handled (`by_agent`).
pub fn agent_key(agent: &str, id: &str) -> Vec<u8> {
    let mut key = agent_prefix(agent);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The prefix of every [`agent_key`] of one agent.
pub fn agent_prefix(agent: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(agent.len() + 40);
    key.extend_from_slice(agent.as_bytes());
    key.push(SEP);
    key
}

/// The id part of a key that ends with `0 ++ id` (customer and agent indexes).
pub fn id_after_separator(key: &[u8]) -> Option<&str> {
    let sep = key.iter().position(|b| *b == SEP)?;
    std::str::from_utf8(&key[sep + 1..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seq_key_gives_back_its_service() {
        let key = service_seq_key("6f1c2a9e", 42);
        assert_eq!(service_of_seq_key(&key), Some("6f1c2a9e"));
        assert_eq!(seq_at_end(&key), Some(42));
        assert_eq!(service_of_seq_key(b"short"), None);
    }

    #[test]
    fn time_keys_sort_in_time_order_past_256_items() {
        let mut keys: Vec<Vec<u8>> = (0..1000u64)
            .rev()
            .map(|i| time_key(Timestamp::from_millis(i * 7), "id"))
            .collect();
        keys.sort();
        let times: Vec<u64> = keys
            .iter()
            .map(|k| split_time_key(k).unwrap().0.as_millis())
            .collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn keys_split_back_into_their_parts() {
        let key = time_key(Timestamp::from_millis(42), "abc");
        assert_eq!(
            split_time_key(&key),
            Some((Timestamp::from_millis(42), "abc"))
        );
        assert!(key < time_upper_bound(Timestamp::from_millis(42)));

        let key = service_state_key("chat-delay", CallbackState::Queued, "abc");
        assert_eq!(
            split_service_state_key(&key),
            Some(("chat-delay", CallbackState::Queued, "abc"))
        );
        assert_eq!(id_after_separator(&customer_key("555", "abc")), Some("abc"));
        assert!(customer_key("555", "x").starts_with(&customer_prefix("555")));
        assert!(!customer_key("5551", "x").starts_with(&customer_prefix("555")));
        assert_eq!(seq_at_end(&undelivered_key("alice", 7)), Some(7));
        assert_eq!(seq_at_end(&service_seq_key("s1", 300)), Some(300));
        assert!(!undelivered_key("alice2", 1).starts_with(&undelivered_prefix("alice")));
        let key = owner_key("alice", "chat-delay", "abc");
        assert_eq!(id_after_owner_prefix(&key), Some("abc"));
        assert!(key.starts_with(&owner_prefix("alice", "chat-delay")));
        assert!(!owner_key("alice", "chat-delay2", "x")
            .starts_with(&owner_prefix("alice", "chat-delay")));
        assert!(!owner_key("alice2", "chat-delay", "x")
            .starts_with(&owner_prefix("alice", "chat-delay")));
        assert!(service_state_key("a", CallbackState::Queued, "x")
            .starts_with(&service_state_prefix("a", CallbackState::Queued)));
        assert_eq!(prefix_end(b"ab\0"), Some(b"ab\x01".to_vec()));
        assert_eq!(prefix_end(&[7, 255]), Some(vec![8]));
        assert_eq!(prefix_end(&[255]), None);
    }
}
