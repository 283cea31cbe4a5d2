//! Notifications, chat sessions and transcripts, and throttle counts on PostgreSQL.
