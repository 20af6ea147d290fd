package messaging

import (
	"context"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/companin/companin/domain/es"
)

// Message metadata keys: stable names, never Go type names. They describe the
// event for watermill's logs and middlewares; the runtime's own bookkeeping
// (the events of a delivery, a job, its outcome) travels as a typed value in
// the message's context (delivery, jobDelivery), never in these strings.
const (
	MetaEventID       = "event_id"
	MetaEventType     = "event_type"
	MetaStream        = "stream"
	MetaStreamVersion = "stream_version"
	MetaPosition      = "position"
	MetaConsumer      = "consumer"
)

// eventMessage is the watermill message for e delivered to consumer, carrying
// v (the typed delivery) in its context under key; it has no payload: the
// event travels in v as it was read, never re-encoded.
func eventMessage(ctx context.Context, consumer string, e es.Event, key, v any) *message.Message {
	msg := message.NewMessage(e.ID.String(), nil)
	msg.Metadata.Set(MetaEventID, e.ID.String())
	msg.Metadata.Set(MetaEventType, e.Type)
	msg.Metadata.Set(MetaStream, e.Stream)
	msg.Metadata.Set(MetaStreamVersion, strconv.FormatUint(e.Version, 10))
	msg.Metadata.Set(MetaPosition, string(e.Position))
	msg.Metadata.Set(MetaConsumer, consumer)
	corr := e.Metadata.CorrelationID
	if corr == "" {
		corr = e.ID.String()
	}
	middleware.SetCorrelationID(corr, msg)
	msg.SetContext(context.WithValue(ctx, key, v))
	return msg
}
