// Package natsfeed publishes the event log, live and in log order, to NATS
// JetStream for analytics teams: each event becomes one message on
// <prefix>.<organization id>.<event type> (prefix companin.events by default;
// "none" stands for an event of no organization), its body the JSON of
// GET /api/v1/events (package eventjson), its Nats-Msg-Id the event id.
//
// The feed is a consumer of the messaging runtime like a projection: one
// process at a time leads it (advisory lock), it follows the log from its
// checkpoint, and the checkpoint commits after JetStream acknowledged the
// message. cmd/companin runs it in a runtime of its own, so that API writes
// never wait for the broker and /readyz does not depend on it.
//
// Guarantees:
//   - Every event of the log is in the stream once, in log order, whatever
//     crashes happen. After a crash the feed replays from its checkpoint (at
//     most the events between the last acknowledged publish and its
//     checkpoint commit). Before publishing it reads the stream's last
//     message (header Companin-Position) and skips events at or before it;
//     each publish then carries Nats-Expected-Last-Sequence, so a stale
//     leader, or a publish whose acknowledgement was lost, fails instead of
//     writing twice, and the feed reads the stream's end again. Nats-Msg-Id
//     with the stream's duplicate window (10 minutes) is the second guard,
//     for when the stream's last message cannot be read (removed by limits).
//   - Personal fields stay sealed ({"$enc":"v1:..."}): the feed reads the log
//     as stored, not through the crypto-shredding store, so destroying a
//     person's key makes their data unreadable in the stream too. A field
//     that is personal today but that an older event holds in the clear
//     (Config.Personal) is published as null and named in
//     metadata.extra.withheld.
//   - A publish failure (broker down, timeout) is retried with backoff for as
//     long as it takes; the checkpoint does not move meanwhile and its row in
//     consumer_checkpoints says why (last_error).
//   - An event that cannot become a message (an organization id or type that
//     is not a subject token, data that is not JSON) is parked: a row in
//     feed_parked with the reason, and the feed goes on. An event larger than
//     what the server accepts (max_payload, or the stream's max_msg_size) is
//     published with "data": null and the header Companin-Data-Omitted
//     saying why; read it whole from GET /api/v1/events?stream=<stream>.
//
// Operations:
//   - The stream (COMPANIN_EVENTS by default) is created at first use:
//     subjects <prefix>.>, file storage, limits retention without limits,
//     duplicate window 10 minutes. An existing stream keeps its settings
//     (replicas, limits); the feed only adds its subjects and raises a
//     shorter duplicate window.
//   - One stream per event log: the feed compares positions of this log with
//     the Companin-Position of the stream's last message.
//   - Where it stands: SELECT * FROM consumer_checkpoints WHERE name LIKE 'nats-feed:%';
//     what it parked: SELECT * FROM feed_parked.
//   - To publish the whole log again into a new stream, use a new stream
//     name (its checkpoint is nats-feed:<stream>), or delete the stream and
//     the checkpoint row.
//   - Metrics: companin_consumer_*{consumer="nats-feed:<stream>"} (processed,
//     failures, lag), companin_feed_parked_total and
//     companin_feed_data_omitted_total.
package natsfeed
