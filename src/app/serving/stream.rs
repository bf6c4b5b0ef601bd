//! The event stream: where accepted events go after their transaction committed (the outbox
//! relay publishes them) and who hears of them. `EventStream` is NATS JetStream in
//! production and an in-process bus in the embedded default; both deliver every event to
//! every replica (`Consumers::every_replica`: near caches) and each event once among all
//! replicas (`Consumers::once`: trending counts, which are shared), again until it succeeds.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use async_trait::async_trait;
use futures_util::StreamExt as _;
use tokio::sync::{Notify, OnceCell, broadcast};

use super::cache::CacheError;
use crate::store::Store;
use crate::store::outbox::StreamEvent;
use crate::telemetry;

/// What the stream's consumers do with an event.
#[async_trait]
pub trait Consumers: Send + Sync {
    /// Every event, on every replica (best effort: near caches only).
    async fn every_replica(&self, event: &StreamEvent);
    /// Every event once among all replicas; an error means "deliver it again later".
    async fn once(&self, event: &StreamEvent) -> Result<(), CacheError>;
}

/// Publishing accepted events and consuming them.
#[async_trait]
pub trait EventStream: Send + Sync {
    /// `memory` or `nats`.
    fn kind(&self) -> &'static str;
    /// Publishes `batch` (dedupe id, payload) in order; returns how many, from the start,
    /// the stream confirmed it stored, and the error that stopped it, if any.
    async fn publish(&self, batch: &[(String, Vec<u8>)]) -> (usize, Option<String>);
    /// Starts delivering events to `consumers` (background tasks; they retry while the
    /// stream is down).
    fn start(&self, consumers: Arc<dyn Consumers>);
}

// ---------------------------------------------------------------------------------------------
// In process

/// The embedded default: a broadcast channel. One process is the only replica, so "every
/// replica" and "once" are the same delivery.
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<StreamEvent>>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(4096).0,
        }
    }
}

#[async_trait]
impl EventStream for InProcessBus {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, batch: &[(String, Vec<u8>)]) -> (usize, Option<String>) {
        for (i, (_, payload)) in batch.iter().enumerate() {
            match serde_json::from_slice::<StreamEvent>(payload) {
                // No receiver yet is fine: nobody to tell.
                Ok(e) => drop(self.sender.send(Arc::new(e))),
                Err(e) => return (i, Some(format!("unreadable outbox payload: {e}"))),
            }
        }
        (batch.len(), None)
    }

    fn start(&self, consumers: Arc<dyn Consumers>) {
        let mut receiver = self.sender.subscribe();
        tokio::spawn(async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        consumers.every_replica(&event).await;
                        let mut delay = Duration::from_millis(50);
                        while let Err(e) = consumers.once(&event).await {
                            tracing::warn!(error = %e, "event consumer failed; retrying");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(5));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "event bus consumer fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// NATS JetStream

/// How long a publication may wait for the stream's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// The stream's dedupe window: a relay that published and was killed before marking its rows
/// sent publishes them again within seconds, well inside it.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The shared consumer that counts trending plays.
const TRENDING_CONSUMER: &str = "trending";

/// JetStream: stream `<PREFIX>_EVENTS` on subject `<prefix>.events`.
pub struct NatsStream {
    client: async_nats::Client,
    js: jetstream::Context,
    subject: String,
    stream_name: String,
    stream: OnceCell<stream::Stream>,
}

impl NatsStream {
    /// Connects in the background: a server down at start is retried like one that goes away
    /// later, and serving starts regardless.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(PUBLISH_TIMEOUT))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((100 * attempts as u64).min(1_000))
            })
            .event_callback(|event| async move {
                let up = !matches!(event, async_nats::Event::Disconnected);
                telemetry::dependency_up(telemetry::Dependency::Nats, up);
            })
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("NATS_URL: {e}"))?;
        let js = jetstream::new(client.clone());
        let clean: String = prefix
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Ok(Self {
            client,
            js,
            subject: format!("{clean}.events"),
            stream_name: format!("{}_EVENTS", clean.to_ascii_uppercase()),
            stream: OnceCell::new(),
        })
    }

    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    async fn stream(&self) -> Result<&stream::Stream, String> {
        self.stream
            .get_or_try_init(|| async {
                self.js
                    .get_or_create_stream(stream::Config {
                        name: self.stream_name.clone(),
                        subjects: vec![self.subject.clone()],
                        duplicate_window: DUPLICATE_WINDOW,
                        max_age: Duration::from_secs(7 * 24 * 3600),
                        storage: stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| format!("stream {}: {e}", self.stream_name))
            })
            .await
    }
}

#[async_trait]
impl EventStream for NatsStream {
    fn kind(&self) -> &'static str {
        "nats"
    }

    async fn publish(&self, batch: &[(String, Vec<u8>)]) -> (usize, Option<String>) {
        if let Err(e) = self.stream().await {
            return (0, Some(e));
        }
        // Send them all, then wait for the acknowledgements in order.
        let mut acks = Vec::with_capacity(batch.len());
        for (id, payload) in batch {
            let message = PublishMessage::build()
                .payload(payload.clone().into())
                .message_id(id);
            match self.js.send_publish(self.subject.clone(), message).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    acks.clear();
                    return (0, Some(format!("publish: {e}")));
                }
            }
        }
        for (i, ack) in acks.into_iter().enumerate() {
            match tokio::time::timeout(PUBLISH_TIMEOUT, ack).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return (i, Some(format!("publish acknowledgement: {e}"))),
                Err(_) => return (i, Some("no acknowledgement in time".to_owned())),
            }
        }
        (batch.len(), None)
    }

    fn start(&self, consumers: Arc<dyn Consumers>) {
        // Every replica: a plain subscription (resubscribed by the client after reconnects).
        let client = self.client.clone();
        let subject = self.subject.clone();
        let every = consumers.clone();
        tokio::spawn(async move {
            loop {
                match client.subscribe(subject.clone()).await {
                    Ok(mut sub) => {
                        while let Some(msg) = sub.next().await {
                            if let Ok(e) = serde_json::from_slice::<StreamEvent>(&msg.payload) {
                                every.every_replica(&e).await;
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "event subscription failed"),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        // Once among replicas: a durable pull consumer all replicas share.
        let js = self.js.clone();
        let stream_name = self.stream_name.clone();
        let this_stream = self.stream.get().cloned();
        let subject = self.subject.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            loop {
                match consume_once(&js, &stream_name, &subject, this_stream.clone(), &consumers)
                    .await
                {
                    Ok(()) => delay = Duration::from_millis(100),
                    Err(e) => {
                        tracing::debug!(error = %e, "shared event consumer: retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                }
            }
        });
    }
}

/// Fetches batches from the shared consumer until something fails.
async fn consume_once(
    js: &jetstream::Context,
    stream_name: &str,
    subject: &str,
    known: Option<stream::Stream>,
    consumers: &Arc<dyn Consumers>,
) -> Result<(), String> {
    let stream = match known {
        Some(s) => s,
        None => js
            .get_or_create_stream(stream::Config {
                name: stream_name.to_owned(),
                subjects: vec![subject.to_owned()],
                duplicate_window: DUPLICATE_WINDOW,
                max_age: Duration::from_secs(7 * 24 * 3600),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?,
    };
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(
            TRENDING_CONSUMER,
            pull::Config {
                durable_name: Some(TRENDING_CONSUMER.to_owned()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(5),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(200)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(|e| e.to_string())?;
            let handled = match serde_json::from_slice::<StreamEvent>(&msg.payload) {
                Ok(e) => consumers.once(&e).await.map_err(|e| e.0),
                // Unreadable: acknowledged, so it does not come back forever.
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable event on the stream; skipped");
                    Ok(())
                }
            };
            match handled {
                Ok(()) => msg.ack().await.map_err(|e| e.to_string())?,
                // Not acknowledged: the stream delivers it again after `ack_wait`.
                Err(e) => return Err(e),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The outbox relay

/// Rows published per claim.
const RELAY_BATCH: i64 = 256;
/// How often the relay looks for rows when nobody woke it (rows another replica left behind,
/// e.g. one killed between commit and publication).
const RELAY_POLL: Duration = Duration::from_secs(1);

/// Publishes the outbox to the stream: woken after each commit of events, polling besides,
/// backing off (capped) while the stream or the database is down.
#[derive(Clone)]
pub struct Relay {
    pub store: Store,
    pub stream: Arc<dyn EventStream>,
    pub wake: Arc<Notify>,
}

impl Relay {
    /// Publishes unsent rows until there are none; `Err` when the database or the stream
    /// failed (the rows stay unsent).
    pub async fn drain(&self) -> Result<usize, String> {
        let mut published = 0;
        loop {
            let batch = self
                .store
                .outbox_claim(RELAY_BATCH)
                .await
                .map_err(|e| e.to_string())?;
            if batch.rows.is_empty() {
                return Ok(published);
            }
            let messages: Vec<(String, Vec<u8>)> = batch
                .rows
                .iter()
                .map(|r| (r.msg_id.clone(), r.payload.clone().into_bytes()))
                .collect();
            let (sent, error) = self.stream.publish(&messages).await;
            let ids: Vec<i64> = batch.rows[..sent].iter().map(|r| r.id).collect();
            batch
                .sent(&ids, crate::clock::Clock::System.now())
                .await
                .map_err(|e| e.to_string())?;
            telemetry::outbox_published(sent as u64);
            published += sent;
            if let Some(e) = error {
                telemetry::outbox_publish_failed();
                return Err(e);
            }
        }
    }

    /// Runs until `stop` fires (graceful shutdown then `drain`s once more, bounded).
    pub async fn run(self, stop: Arc<Notify>) {
        let mut delay = Duration::from_millis(100);
        let mut purged_at = std::time::Instant::now();
        loop {
            match self.drain().await {
                Ok(_) => delay = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "outbox relay: events wait for the stream");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.notified() => return,
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            if purged_at.elapsed() > Duration::from_secs(60) {
                purged_at = std::time::Instant::now();
                let before = crate::clock::Clock::System.now() - 3_600_000;
                if let Err(e) = self.store.outbox_purge(before).await {
                    tracing::debug!(error = %e, "outbox purge failed");
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(RELAY_POLL) => {}
                _ = stop.notified() => return,
            }
        }
    }
}
