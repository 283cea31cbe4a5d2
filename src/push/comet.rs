//! The CometD server as a push channel, chat transcripts as pushes, and replay to clients
//! that subscribe.

use tokio::sync::mpsc;

use super::{CometSink, Notifier, Provider, PushTarget};
use crate::center::chat::TranscriptListener;
use crate::cometd::{Announcement, Bayeux, Push, Reach, Receipt};
use crate::domain::chat::session::ChatSession;
use crate::domain::chat::TranscriptEvent;
use crate::supervisor::Shutdown;

impl CometSink for Bayeux {
    fn publish(
        &self,
        gms_user: &str,
        tag: &str,
        message: &serde_json::Value,
        receipt: Option<Receipt>,
    ) -> Reach {
        Bayeux::publish(self, gms_user, &push(tag, message, receipt))
    }

    fn publish_to(
        &self,
        client_id: &str,
        tag: &str,
        message: &serde_json::Value,
        receipt: Option<Receipt>,
    ) -> Reach {
        Bayeux::publish_to(self, client_id, &push(tag, message, receipt))
    }
}

fn push(tag: &str, message: &serde_json::Value, receipt: Option<Receipt>) -> Push {
    let push = Push::new(tag, message.clone());
    match receipt {
        Some(receipt) => push.with_receipt(receipt),
        None => push,
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

/// Follows the CometD server's announcements until shutdown: sends each client that
/// subscribes to `/_genesys` its user's undelivered notifications (a client that reconnects
/// after a restart gets what it missed), and marks delivered what clients were handed or
/// acknowledged. One task, in the order announced: a delivery is recorded before a later
/// subscription's replay looks for undelivered notifications.
pub async fn follow_announcements(
    notifier: Notifier,
    mut announcements: mpsc::UnboundedReceiver<Announcement>,
    mut shutdown: Shutdown,
) {
    loop {
        let announcement = tokio::select! {
            // A client subscribed to /_genesys, or has pushes.
            announcement = announcements.recv() => match announcement {
                Some(announcement) => announcement,
                None => break,
            },
            // The service is stopping.
            () = shutdown.wait() => break,
        };
        match announcement {
            Announcement::Subscribed {
                gms_user,
                client_id,
            } => match notifier.replay(&gms_user, &client_id) {
                Ok(0) => {}
                Ok(sent) => {
                    tracing::debug!(%client_id, sent, "undelivered notifications replayed")
                }
                Err(err) => {
                    tracing::warn!(%client_id, error = %err, "cannot replay notifications")
                }
            },
            Announcement::Delivered { gms_user, receipts } => {
                if let Err(err) = notifier.mark_delivered(&gms_user, &receipts) {
                    tracing::error!(error = %err, "cannot mark notifications delivered; they may be delivered again");
                }
            }
        }
    }
}
