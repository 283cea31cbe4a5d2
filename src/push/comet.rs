//! The CometD server as a push channel, chat transcripts as pushes, and replay to clients
//! that subscribe.

use tokio::sync::mpsc;

use super::{CometSink, Notifier, Provider, PushTarget};
use crate::center::chat::{ChatSession, TranscriptListener};
use crate::cometd::{Bayeux, Push, Subscribed};
use crate::domain::chat::TranscriptEvent;
use crate::supervisor::Shutdown;

impl CometSink for Bayeux {
    fn publish(&self, gms_user: &str, tag: &str, message: &serde_json::Value) -> usize {
        Bayeux::publish(self, gms_user, &Push::new(tag, message.clone()))
    }

    fn publish_to(&self, client_id: &str, tag: &str, message: &serde_json::Value) -> bool {
        Bayeux::publish_to(self, client_id, &Push::new(tag, message.clone()))
    }
}

/// Pushes every customer-visible transcript change of a comet-mode chat as
/// `service.chat.refresh.<id>` (seed 003): the chat object with the new rows.
pub struct ChatPushes {
    notifier: Notifier,
}

impl ChatPushes {
    /// Pushes through `notifier`.
    pub fn new(notifier: Notifier) -> Self {
        ChatPushes { notifier }
    }
}

impl TranscriptListener for ChatPushes {
    fn transcript_changed(&self, session: &ChatSession, events: &[TranscriptEvent]) {
        let rows: Vec<[String; 5]> = events.iter().map(|e| e.row(session.created_at)).collect();
        let message = session.wire(session.ixn_state(false), Some(&rows));
        let target = PushTarget {
            service_id: session.service_id.clone(),
            owner: session.owner.clone(),
            provider: Provider::Comet,
        };
        let tag = format!("service.chat.refresh.{}", session.service_id);
        self.notifier.transient(&target, &tag, &message);
    }
}

/// Sends each client that subscribes to `/_genesys` its user's undelivered notifications
/// (a client that reconnects after a restart gets what it missed). Runs until shutdown.
pub async fn replay_to_subscribers(
    notifier: Notifier,
    mut subscribed: mpsc::UnboundedReceiver<Subscribed>,
    mut shutdown: Shutdown,
) {
    loop {
        let client = tokio::select! {
            // A client subscribed to a service's channel.
            client = subscribed.recv() => match client {
                Some(client) => client,
                None => break,
            },
            // The service is stopping.
            () = shutdown.wait() => break,
        };
        match notifier.replay(&client.gms_user, &client.client_id) {
            Ok(0) => {}
            Ok(sent) => {
                tracing::debug!(client_id = %client.client_id, sent, "undelivered notifications replayed")
            }
            Err(err) => {
                tracing::warn!(client_id = %client.client_id, error = %err, "cannot replay notifications")
            }
        }
    }
}
