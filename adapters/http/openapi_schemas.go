package httpapi

import (
	"net/http"
	"reflect"

	"github.com/companin/companin/adapters/eventjson"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/widgetconfig"
	"github.com/companin/companin/queries"
	"github.com/getkin/kin-openapi/openapi3"
)

// This file is the contract of every route: what it reads and what it
// answers, named by the Go types the handlers decode and write. Renaming or
// removing one of those types breaks the build here, so the document follows
// the code. openapi.go turns it into /api/v1/openapi.json; the test suite
// checks every answer it receives against that document (contract_test.go),
// and that every registered route has an entry here.
//
// Keys are "METHOD path" as registered: the path without /api/v1 for API
// routes, the full path for the operational ones. What every route of a kind
// answers besides (401/403/429 when authenticated, 400/413/422 for a body,
// 404 for a path id, 500) is added by openapi.go from the route's scope.
var contract = merge(threadContract("/sessions", "Sessions", "visitor"), threadContract("/conversations", "Conversations", "customer"), map[string]operation{
	"GET /healthz": {Summary: "Liveness: the process answers", Tag: "Operations",
		Answers: []answerSpec{data[healthStatus](200, "Alive")}},
	"GET /readyz": {Summary: "Readiness: the database answers and the projections are caught up", Tag: "Operations",
		Answers: []answerSpec{data[map[string]string](200, "Ready: each check and its state"), notReady()}},
	"GET /metrics": {Summary: "Prometheus metrics", Tag: "Operations",
		Answers: []answerSpec{text(200, "text/plain", "Prometheus text exposition format")}},
	"GET /widget.js": {Summary: "The embeddable chat widget", Tag: "Widget",
		Answers: []answerSpec{text(200, "text/javascript", "The widget script (ETag; 304 on If-None-Match)")}},
	"GET /widget/demo": {Summary: "A page that embeds the widget, to try it", Tag: "Widget",
		Query: []*openapi3.Parameter{queryString("client_id", "Client id the demo page's widget uses"),
			queryString("assistant_id", "Assistant it talks to"), queryString("config_id", "Widget configuration it shows")},
		Answers: []answerSpec{text(200, "text/html", "The demo page")}},
	"GET /openapi.json": {Summary: "This document", Tag: "Operations",
		Answers: []answerSpec{{Status: 200, Description: "The OpenAPI 3 document", Schema: func(*schemaGen) *openapi3.SchemaRef {
			return openapi3.NewObjectSchema().NewRef()
		}}}},

	"POST /auth/widget-token": {Summary: "Issue a widget token for a browser (flat OAuth2-style answer)", Tag: "Authentication",
		Body:    jsonBody[widgetTokenRequest]("client_id"),
		Answers: []answerSpec{flat[widgetTokenResponse](200, "A widget token")},
		Errors:  []int{401, 403, 429}},

	"GET /events": {Summary: "The organization's events in global order; Accept: application/x-ndjson exports them all", Tag: "Events",
		Query: append(pageParams(), eventFilterParams()...),
		Answers: []answerSpec{page[eventjson.Event]("A page of events; with Accept: application/x-ndjson one event per line",
			ndjson[eventjson.Event]())}},
	"GET /events/stream": {Summary: "Tail the organization's events live as Server-Sent Events (id: position, event: type, data: the event)", Tag: "Events",
		Query:   eventFilterParams(),
		Headers: []*openapi3.Parameter{lastEventID("Resume after this position (the id of the last event received)")},
		Answers: []answerSpec{eventStream(200, "Events as they are appended; ': heartbeat' comments when idle")}},

	"GET /assistants":         {Summary: "List assistants", Tag: "Assistants", Query: pageParams(), Answers: []answerSpec{page[queries.Assistant]("Assistants, newest first")}},
	"POST /assistants":        {Summary: "Create an assistant", Tag: "Assistants", Body: jsonBody[assistant.Input]("name"), Answers: []answerSpec{dataOrID[queries.Assistant](201, "The assistant")}},
	"GET /assistants/{id}":    {Summary: "Read an assistant", Tag: "Assistants", Answers: []answerSpec{data[queries.Assistant](200, "The assistant")}},
	"PATCH /assistants/{id}":  {Summary: "Change an assistant (fields sent only)", Tag: "Assistants", Body: jsonBody[assistant.Input](), Answers: []answerSpec{dataOrID[queries.Assistant](200, "The assistant")}},
	"DELETE /assistants/{id}": {Summary: "Delete an assistant", Tag: "Assistants", Answers: []answerSpec{deleted(200)}},

	"POST /sessions": {Summary: "Start an anonymous visitor's session", Tag: "Sessions", Body: jsonBody[startThreadRequest]("assistant_id"), Answers: []answerSpec{dataOrIDOf(session, 201, "The session")},
		Errors: []int{404}}, // the assistant
	"GET /sessions/{id}": {Summary: "Read a session", Tag: "Sessions", Answers: []answerSpec{dataOf(session, 200, "The session")}},
	"GET /conversations": {Summary: "List conversations", Tag: "Conversations", Query: append(pageParams(), queryString("customer_id", "Only this customer's")), Answers: []answerSpec{pageOfItems(conversation, "Conversations, newest first")}},
	"POST /conversations": {Summary: "Start a conversation with a known customer", Tag: "Conversations", Body: jsonBody[startThreadRequest]("assistant_id", "customer_id"), Answers: []answerSpec{dataOrIDOf(conversation, 201, "The conversation")},
		Errors: []int{404}}, // the assistant or the user context
	"GET /conversations/{id}": {Summary: "Read a conversation", Tag: "Conversations", Answers: []answerSpec{dataOf(conversation, 200, "The conversation")}},

	"POST /contexts": {Summary: "Create a user context, or merge traits into the existing one of user_reference", Tag: "User contexts",
		Body:    jsonBody[saveContextRequest]("user_reference"),
		Answers: []answerSpec{dataOrID[queries.UserContext](201, "Created"), dataOrID[queries.UserContext](200, "Merged into the existing context")}},
	"GET /contexts/{ref}":    {Summary: "Read a user context by id or user_reference", Tag: "User contexts", Answers: []answerSpec{data[queries.UserContext](200, "The context")}},
	"PATCH /contexts/{ref}":  {Summary: "Merge traits into a user context", Tag: "User contexts", Body: jsonBody[patchContextRequest](), Answers: []answerSpec{dataOrID[queries.UserContext](200, "The context")}},
	"DELETE /contexts/{ref}": {Summary: "Erase the person: personal data becomes unrecoverable everywhere", Tag: "User contexts", Answers: []answerSpec{erased(200)}},

	"GET /widget-configs":        {Summary: "List widget configurations", Tag: "Widget", Query: pageParams(), Answers: []answerSpec{page[queries.WidgetConfig]("Configurations, newest first")}},
	"POST /widget-configs":       {Summary: "Create a widget configuration", Tag: "Widget", Body: jsonBody[widgetconfig.Input](), Answers: []answerSpec{dataOrID[queries.WidgetConfig](201, "The configuration")}},
	"GET /widget-configs/{id}":   {Summary: "Read a widget configuration", Tag: "Widget", Answers: []answerSpec{data[queries.WidgetConfig](200, "The configuration")}},
	"PATCH /widget-configs/{id}": {Summary: "Change a widget configuration (fields sent only)", Tag: "Widget", Body: jsonBody[widgetconfig.Input](), Answers: []answerSpec{dataOrID[queries.WidgetConfig](200, "The configuration")}},

	"POST /knowledge/files": {Summary: "Upload a document (multipart: title, file_type, file); indexed in the background", Tag: "Knowledge",
		Body: uploadBody(), Answers: []answerSpec{data[queries.KnowledgeSource](201, "The source, status processing")}, Errors: []int{415}},
	"POST /knowledge/qa":   {Summary: "Add a question and its answer; searchable at once", Tag: "Knowledge", Body: jsonBody[addQARequest](), Answers: []answerSpec{data[queries.KnowledgeSource](201, "The source")}},
	"POST /knowledge/urls": {Summary: "Add a web page, fetched and indexed in the background", Tag: "Knowledge", Body: jsonBody[addURLRequest](), Answers: []answerSpec{data[queries.KnowledgeSource](201, "The source, status processing")}},
	"POST /knowledge/search": {Summary: "What retrieval finds for a query, with scores", Tag: "Knowledge", Body: jsonBody[searchKnowledgeRequest](),
		Answers: []answerSpec{{Status: 200, Description: "The passages found", Schema: func(g *schemaGen) *openapi3.SchemaRef {
			return g.envelope("SearchResult", func() *openapi3.SchemaRef {
				return openapi3.NewObjectSchema().WithRequired([]string{"query", "results"}).
					WithProperty("query", openapi3.NewStringSchema()).
					WithPropertyRef("results", openapi3.NewArraySchema().WithItems(g.ref(typeOf[queries.Passage]()).Value).NewRef()).NewRef()
			})
		}}}},
	"GET /knowledge": {Summary: "List knowledge sources, newest first", Tag: "Knowledge",
		Query: append(pageParams(),
			queryEnum("kind", "Only sources of this kind", knowledge.File, knowledge.QA, knowledge.URL),
			queryEnum("status", "Only sources in this state", knowledge.Processing, knowledge.Ready, knowledge.Failed),
			queryUUID("assistant_id", "Only sources this assistant may use")),
		Answers: []answerSpec{page[queries.KnowledgeSource]("Sources")}},
	"GET /knowledge/{id}":          {Summary: "Read a knowledge source and its state", Tag: "Knowledge", Answers: []answerSpec{data[queries.KnowledgeSource](200, "The source")}},
	"GET /knowledge/{id}/chunks":   {Summary: "The passages a source was cut into", Tag: "Knowledge", Query: pageParams(), Answers: []answerSpec{page[queries.KnowledgeChunk]("Chunks in document order")}},
	"DELETE /knowledge/{id}":       {Summary: "Remove a knowledge source", Tag: "Knowledge", Answers: []answerSpec{deleted(200)}},
	"POST /knowledge/{id}/refresh": {Summary: "Fetch or extract a source again; its chunks answer until the new ones are ready", Tag: "Knowledge", Answers: []answerSpec{data[queries.KnowledgeSource](202, "The source, status processing")}},
})

// threadContract is what sessions and conversations share: their messages,
// replies, feedback and event history, under base.
func threadContract(base, tag, who string) map[string]operation {
	return map[string]operation{
		"POST " + base + "/{id}/messages": {Summary: "Post a " + who + "'s message and wait for the reply", Tag: tag,
			Body: jsonBody[postMessageRequest]("content"), Query: replyParams(), Headers: replyHeaders(), Answers: replyAnswers()},
		"GET " + base + "/{id}/messages": {Summary: "List the messages, oldest first", Tag: tag, Query: pageParams(),
			Answers: []answerSpec{page[queries.Message]("Messages")}},
		"GET " + base + "/{id}/events": {Summary: "The event history", Tag: tag, Query: pageParams(),
			Answers: []answerSpec{page[eventjson.Event]("Events of the stream, in order")}},
		"POST " + base + "/{id}/messages/{message_id}/feedback": {Summary: "Rate an assistant reply (like, dislike, or null to withdraw)", Tag: tag,
			Body: jsonBody[feedbackRequest](), Answers: []answerSpec{data[feedbackDTO](201, "The feedback as recorded")}},
	}
}

func merge(parts ...map[string]operation) map[string]operation {
	out := map[string]operation{}
	for _, p := range parts {
		for k, v := range p {
			if _, dup := out[k]; dup {
				panic("openapi: two contracts for " + k)
			}
			out[k] = v
		}
	}
	return out
}

// A session and a conversation are both a queries.Thread, with the fields
// of who it is with.
var (
	session      = viewOf[queries.Thread]("Session", "visitor_id")
	conversation = viewOf[queries.Thread]("Conversation", "customer_id", "user_context_id", "title")
)

// schemaNames name the components of types whose Go names say too little
// (or clash: every domain package has its Input).
var schemaNames = map[reflect.Type]string{
	typeOf[assistant.Input]():    "AssistantRequest",
	typeOf[widgetconfig.Input](): "WidgetConfigRequest",
	typeOf[startThreadRequest](): "StartThreadRequest",
}

// enums are the values a string field of a component takes, from the
// domain's constants: "Component.field" or "Component.field.nested".
var enums = map[string][]any{
	"Message.role":                   {message.User, message.Assistant},
	"MessageWithReply.role":          {message.User},
	"MessageWithReply.reply_status":  {replyCompleted, replyPending, replyFailed},
	"MessageWithReply.reply.role":    {message.Assistant},
	"KnowledgeSource.kind":           {knowledge.File, knowledge.QA, knowledge.URL},
	"KnowledgeSource.status":         {knowledge.Processing, knowledge.Ready, knowledge.Failed},
	"Passage.kind":                   {"qa", "passage"},
	"Feedback.rating":                {answer.Like, answer.Dislike},
	"FeedbackRequest.rating":         {answer.Like, answer.Dislike},
	"WidgetConfig.position":          {widgetconfig.PositionBottomRight, widgetconfig.PositionBottomLeft},
	"WidgetConfigRequest.position":   {widgetconfig.PositionBottomRight, widgetconfig.PositionBottomLeft},
	"WidgetTokenResponse.token_type": {"Bearer"},
}

// healthStatus is the data of GET /healthz.
type healthStatus struct {
	Status string `json:"status"`
}

// Streamed and negotiated answers of POST .../messages and the reply's
// Server-Sent Events.
func replyAnswers() []answerSpec {
	return []answerSpec{
		data[messageWithReplyDTO](201, "The message and its reply (reply_status completed or failed)"),
		data[messageWithReplyDTO](202, "The message; the reply was not ready within the wait (reply_status pending, reply null)"),
		eventStream(200, "With Accept: text/event-stream: events message.created and reply.completed (data: the message as in 201), "+
			"reply.delta (data: {message_id, reply_id, delta}), error (data: {code, message}); each id: resumes with Last-Event-ID"),
	}
}

func replyParams() []*openapi3.Parameter {
	return []*openapi3.Parameter{queryString("wait",
		"Seconds to wait for the reply (0: do not wait), or a duration such as 1500ms; at most 120 s. Default COMPANIN_REPLY_WAIT")}
}

func replyHeaders() []*openapi3.Parameter {
	return []*openapi3.Parameter{lastEventID("With Accept: text/event-stream, resume that reply's stream: records nothing")}
}

// sseData names the schema of each Server-Sent Event's data, per route, for
// clients and for the contract test.
// The event "*" stands for any other event name.
var sseData = map[string]map[string]func(*schemaGen) *openapi3.SchemaRef{
	"POST /sessions/{id}/messages":      replyEvents,
	"POST /conversations/{id}/messages": replyEvents,
	"GET /events/stream": {
		"*":     schemaOf[eventjson.Event], // the event name is its type
		"error": schemaOf[streamError],
	},
}

// streamError is the data of the error event that ends GET /events/stream
// when reading the log fails (events.go writes it literally).
type streamError struct {
	Detail string `json:"detail"`
}

var replyEvents = map[string]func(*schemaGen) *openapi3.SchemaRef{
	"message.created": schemaOf[messageWithReplyDTO],
	"reply.delta":     schemaOf[deltaDTO],
	"reply.completed": schemaOf[messageWithReplyDTO],
	"error":           schemaOf[replyErrorDTO],
}

// notReady is /readyz's 503: the error envelope with each check and its
// state as data.
func notReady() answerSpec {
	return answerSpec{Status: http.StatusServiceUnavailable, Description: statusText[http.StatusServiceUnavailable], Schema: func(g *schemaGen) *openapi3.SchemaRef {
		if _, ok := g.components["NotReady"]; !ok {
			s := openapi3.NewObjectSchema().WithRequired([]string{"status", "status_code", "detail", "data"}).
				WithProperty("status", openapi3.NewStringSchema().WithEnum("error")).
				WithProperty("status_code", openapi3.NewIntegerSchema().WithEnum(http.StatusServiceUnavailable)).
				WithProperty("detail", openapi3.NewStringSchema()).
				WithProperty("data", openapi3.NewObjectSchema().WithAdditionalProperties(openapi3.NewStringSchema()))
			g.components["NotReady"] = s.NewRef()
		}
		return componentRef("NotReady", g.components["NotReady"].Value)
	}}
}

func deleted(status int) answerSpec {
	return answerSpec{Status: status, Description: "Deleted", Schema: func(g *schemaGen) *openapi3.SchemaRef {
		return g.envelope("Deleted", func() *openapi3.SchemaRef {
			return openapi3.NewObjectSchema().WithRequired([]string{"id", "deleted"}).
				WithProperty("id", openapi3.NewUUIDSchema()).
				WithProperty("deleted", openapi3.NewBoolSchema().WithEnum(true)).NewRef()
		})
	}}
}

func erased(status int) answerSpec {
	return answerSpec{Status: status, Description: "Erased (a retry answers the same tombstone)", Schema: func(g *schemaGen) *openapi3.SchemaRef {
		return g.envelope("Erased", func() *openapi3.SchemaRef {
			return openapi3.NewObjectSchema().WithRequired([]string{"id", "erased", "erased_at"}).
				WithProperty("id", openapi3.NewUUIDSchema()).
				WithProperty("erased", openapi3.NewBoolSchema().WithEnum(true)).
				WithProperty("erased_at", openapi3.NewDateTimeSchema()).NewRef()
		})
	}}
}

func uploadBody() *requestBody {
	return &requestBody{Media: "multipart/form-data", Schema: func(*schemaGen) *openapi3.SchemaRef {
		return openapi3.NewObjectSchema().WithRequired([]string{"file"}).
			WithProperty("file", openapi3.NewStringSchema().WithFormat("binary")).
			WithProperty("title", openapi3.NewStringSchema()).
			WithProperty("file_type", openapi3.NewStringSchema().WithEnum("pdf", "txt", "md", "html", "docx", "csv")).
			WithProperty("external_id", openapi3.NewStringSchema()).
			WithProperty("source", openapi3.NewStringSchema()).
			WithProperty("tags", described(openapi3.NewStringSchema(), "repeated, or a JSON array")).
			WithProperty("assistant_ids", described(openapi3.NewStringSchema(), "repeated, comma-separated, or a JSON array of UUIDs")).
			NewRef()
	}}
}

func pageParams() []*openapi3.Parameter {
	return []*openapi3.Parameter{
		openapi3.NewQueryParameter("limit").WithDescription("Page size").
			WithSchema(openapi3.NewIntegerSchema().WithMin(1).WithMax(maxPageSize).WithDefault(defaultPageSize)),
		openapi3.NewQueryParameter("cursor").WithDescription("meta.next_cursor of the previous page").
			WithSchema(openapi3.NewStringSchema().WithMaxLength(maxCursorLen)),
	}
}

func eventFilterParams() []*openapi3.Parameter {
	return []*openapi3.Parameter{
		queryString("after", "Position to read after (a previous event's position)"),
		queryString("types", "Comma-separated event types, at most 50"),
		queryString("stream", "Only this stream's events"),
	}
}

func lastEventID(desc string) *openapi3.Parameter {
	return openapi3.NewHeaderParameter("Last-Event-ID").WithDescription(desc).WithSchema(openapi3.NewStringSchema())
}

func queryString(name, desc string) *openapi3.Parameter {
	return openapi3.NewQueryParameter(name).WithDescription(desc).WithSchema(openapi3.NewStringSchema())
}

func queryEnum[T ~string](name, desc string, values ...T) *openapi3.Parameter {
	var plain []any
	for _, v := range values {
		plain = append(plain, string(v))
	}
	return openapi3.NewQueryParameter(name).WithDescription(desc).WithSchema(openapi3.NewStringSchema().WithEnum(plain...))
}

func queryUUID(name, desc string) *openapi3.Parameter {
	return openapi3.NewQueryParameter(name).WithDescription(desc).WithSchema(openapi3.NewUUIDSchema())
}

// statusText is the description of an error status in the document.
var statusText = map[int]string{
	http.StatusBadRequest:            "Malformed body (not JSON, not an object, unreadable)",
	http.StatusUnauthorized:          "Missing or invalid credentials",
	http.StatusForbidden:             "Not allowed: a widget token on an API-key route, or an Origin not allowed",
	http.StatusNotFound:              "No such resource in this organization",
	http.StatusConflict:              "Conflicting write (concurrent change, or the same Idempotency-Key still running)",
	http.StatusRequestEntityTooLarge: "Body over the size limit",
	http.StatusUnsupportedMediaType:  "Wrong Content-Type",
	http.StatusUnprocessableEntity:   "Validation failed: data.errors names each field",
	http.StatusTooManyRequests:       "Over the rate limit (Retry-After says when to retry)",
	http.StatusInternalServerError:   "Internal error (nothing internal is shown)",
	http.StatusServiceUnavailable:    "Not ready: data names each check",
}
