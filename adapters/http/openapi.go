package httpapi

import (
	"encoding"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
	"github.com/google/uuid"
)

var pathParam = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

// openAPI serves the document of the routes actually registered, typed by
// the contract of openapi_schemas.go.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := s.openAPIDocument()
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// operation is the contract of one route (see openapi_schemas.go).
type operation struct {
	Summary string
	Tag     string
	// Body is the request body; nil: none.
	Body *requestBody
	// Query and Headers are the parameters besides the path's and those every
	// route of its kind takes (Idempotency-Key).
	Query, Headers []*openapi3.Parameter
	// Answers are the successful answers.
	Answers []answerSpec
	// Errors are error statuses besides those of every route of its kind.
	Errors []int
}

// answerSpec is one documented response: a status and, per media type, a schema.
type answerSpec struct {
	Status      int
	Description string
	// Media is the content type; "" is application/json.
	Media  string
	Schema func(*schemaGen) *openapi3.SchemaRef
	// Also are more media types of the same status (content negotiation).
	Also []answerSpec
}

// requestBody is what a route reads: JSON unless Media says otherwise.
type requestBody struct {
	Media  string
	Schema func(*schemaGen) *openapi3.SchemaRef
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// schemaOf is T's component schema.
func schemaOf[T any](g *schemaGen) *openapi3.SchemaRef { return g.ref(typeOf[T]()) }

// jsonBody is a JSON request body decoded into T; required names the fields
// the handler refuses to go without.
func jsonBody[T any](required ...string) *requestBody {
	return &requestBody{Schema: func(g *schemaGen) *openapi3.SchemaRef {
		ref := g.requestRef(typeOf[T]())
		if len(required) == 0 {
			return ref
		}
		// The component is shared (POST and PATCH decode the same type):
		// the required fields of this route go beside it.
		return &openapi3.SchemaRef{Value: &openapi3.Schema{AllOf: openapi3.SchemaRefs{ref,
			openapi3.NewObjectSchema().WithRequired(required).NewRef()}}}
	}}
}

// item is the schema of what an envelope carries, and the component name
// its envelopes are named after.
type item struct {
	name   func(*schemaGen) string
	schema func(*schemaGen) *openapi3.SchemaRef
}

// itemOf is a T.
func itemOf[T any]() item {
	return item{name: func(g *schemaGen) string { return g.name(typeOf[T]()) }, schema: schemaOf[T]}
}

// viewOf is a T in one of its shapes, named name: one that always has the
// fields required besides T's own (a session: queries.Thread with its
// visitor).
func viewOf[T any](name string, required ...string) item {
	return item{name: func(*schemaGen) string { return name }, schema: func(g *schemaGen) *openapi3.SchemaRef {
		if _, ok := g.components[name]; !ok {
			g.components[name] = &openapi3.SchemaRef{Value: &openapi3.Schema{AllOf: openapi3.SchemaRefs{g.ref(typeOf[T]()),
				openapi3.NewObjectSchema().WithRequired(required).NewRef()}}}
		}
		return componentRef(name, g.components[name].Value)
	}}
}

// data is the success envelope around a T.
func data[T any](status int, desc string) answerSpec { return dataOf(itemOf[T](), status, desc) }

func dataOf(it item, status int, desc string) answerSpec {
	return answerSpec{Status: status, Description: desc, Schema: func(g *schemaGen) *openapi3.SchemaRef {
		return g.envelope(it.name(g), func() *openapi3.SchemaRef { return it.schema(g) })
	}}
}

// dataOrID is the envelope of a write's answer: the resource as the read
// model shows it, or only its id when the read model did not catch up
// within the bound (header Companin-Read-Models: behind).
func dataOrID[T any](status int, desc string) answerSpec {
	return dataOrIDOf(itemOf[T](), status, desc)
}

func dataOrIDOf(it item, status int, desc string) answerSpec {
	return answerSpec{Status: status, Description: desc + "; only {id} with Companin-Read-Models: behind", Schema: func(g *schemaGen) *openapi3.SchemaRef {
		return g.envelope(it.name(g)+"OrID", func() *openapi3.SchemaRef {
			return &openapi3.SchemaRef{Value: &openapi3.Schema{OneOf: openapi3.SchemaRefs{it.schema(g), g.idOnly()}}}
		})
	}}
}

// page is the list envelope of Ts, with meta; more are other media types.
func page[T any](desc string, more ...answerSpec) answerSpec {
	return pageOfItems(itemOf[T](), desc, more...)
}

func pageOfItems(it item, desc string, more ...answerSpec) answerSpec {
	return answerSpec{Status: http.StatusOK, Description: desc, Also: more, Schema: func(g *schemaGen) *openapi3.SchemaRef {
		name := it.name(g) + "List"
		if _, ok := g.components[name]; !ok {
			env := g.envelopeSchema(nil)
			env.Properties["data"] = &openapi3.SchemaRef{Value: &openapi3.Schema{Type: &openapi3.Types{"array"}, Items: it.schema(g)}}
			env.Properties["meta"] = componentRef("ListMeta", g.components["ListMeta"].Value)
			env.Required = append(env.Required, "meta")
			g.components[name] = env.NewRef()
		}
		return componentRef(name, g.components[name].Value)
	}}
}

// flat is a T without the envelope (the widget token, as OAuth2 answers).
func flat[T any](status int, desc string) answerSpec {
	return answerSpec{Status: status, Description: desc, Schema: schemaOf[T]}
}

// ndjson is one T per line.
func ndjson[T any]() answerSpec {
	return answerSpec{Media: "application/x-ndjson", Schema: func(g *schemaGen) *openapi3.SchemaRef {
		return &openapi3.SchemaRef{Value: &openapi3.Schema{Type: &openapi3.Types{"array"}, Items: g.ref(typeOf[T]()),
			Description: "one JSON object per line"}}
	}}
}

func text(status int, media, desc string) answerSpec {
	return answerSpec{Status: status, Description: desc, Media: media, Schema: func(*schemaGen) *openapi3.SchemaRef {
		return openapi3.NewStringSchema().NewRef()
	}}
}

func eventStream(status int, desc string) answerSpec {
	return text(status, "text/event-stream", desc)
}

// schemaGen makes component schemas of Go types with openapi3gen, as
// encoding/json shows them: fields without omitempty are required in
// answers, UUIDs and other text marshalers are strings.
type schemaGen struct {
	components openapi3.Schemas
	responses  openapi3.ResponseBodies
	types      map[string]reflect.Type
}

func newSchemaGen() *schemaGen {
	g := &schemaGen{components: openapi3.Schemas{}, responses: openapi3.ResponseBodies{}, types: map[string]reflect.Type{}}
	g.components["ListMeta"] = openapi3.NewObjectSchema().WithRequired([]string{"has_more", "next_cursor"}).
		WithProperty("has_more", openapi3.NewBoolSchema()).
		WithProperty("next_cursor", openapi3.NewStringSchema().WithNullable()).NewRef()
	fieldError := openapi3.NewObjectSchema().WithRequired([]string{"field", "message"}).
		WithProperty("field", described(openapi3.NewStringSchema(), `JSON path of the field ("metadata.source", "default_tasks[2]"); "" for the whole body`)).
		WithProperty("message", openapi3.NewStringSchema())
	errorData := openapi3.NewObjectSchema().WithNullable().WithRequired([]string{"code", "errors"}).
		WithProperty("code", described(openapi3.NewStringSchema(), "machine-readable code")).
		WithProperty("errors", openapi3.NewArraySchema().WithItems(fieldError))
	errorData.Description = "null, or {code, errors}: errors names each field at fault (empty when no field is)"
	g.components["Error"] = openapi3.NewObjectSchema().WithRequired([]string{"status", "status_code", "detail", "data"}).
		WithProperty("status", openapi3.NewStringSchema().WithEnum("error")).
		WithProperty("status_code", described(openapi3.NewIntegerSchema(), "the HTTP status")).
		WithProperty("detail", openapi3.NewStringSchema()).
		WithProperty("data", errorData).NewRef()
	g.components["Error"].Value.Description = "The error envelope of every failed answer"
	return g
}

func componentRef(name string, v *openapi3.Schema) *openapi3.SchemaRef {
	return &openapi3.SchemaRef{Ref: "#/components/schemas/" + name, Value: v}
}

// name is the component name of t: its Go name, exported.
func (g *schemaGen) name(t reflect.Type) string {
	if n, ok := schemaNames[t]; ok {
		return n
	}
	n := t.Name()
	if n == "" {
		return ""
	}
	r := []rune(n)
	r[0] = unicode.ToUpper(r[0])
	n = strings.TrimSuffix(string(r), "DTO")
	return n
}

// ref is the component schema of t as answered.
func (g *schemaGen) ref(t reflect.Type) *openapi3.SchemaRef { return g.component(t, false) }

// requestRef is the component schema of t as read from a request.
func (g *schemaGen) requestRef(t reflect.Type) *openapi3.SchemaRef { return g.component(t, true) }

// component registers t's schema under its name (an unnamed type, such as
// a map, is written in place) with the enums the contract gives its fields.
func (g *schemaGen) component(t reflect.Type, request bool) *openapi3.SchemaRef {
	name := g.name(t)
	if name == "" {
		return g.generate(t, request)
	}
	if seen, ok := g.types[name]; ok {
		if seen != t {
			panic(fmt.Sprintf("openapi: two types named %s: %v and %v", name, seen, t))
		}
		return componentRef(name, g.components[name].Value)
	}
	g.types[name] = t
	g.components[name] = g.generate(t, request)
	for key, values := range enums {
		path := strings.Split(key, ".")
		if path[0] != name {
			continue
		}
		s := g.components[name].Value
		for _, field := range path[1:] {
			p := s.Properties[field]
			if p == nil || p.Value == nil {
				panic("openapi: enum of a field that is not there: " + key)
			}
			s = p.Value
		}
		for _, v := range values {
			s.Enum = append(s.Enum, reflect.ValueOf(v).String()) // typed string constants as plain strings
		}
		if s.Nullable {
			s.Enum = append(s.Enum, nil)
		}
	}
	return componentRef(name, g.components[name].Value)
}

var (
	uuidType          = reflect.TypeFor[uuid.UUID]()
	timeType          = reflect.TypeFor[time.Time]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func (g *schemaGen) generate(t reflect.Type, request bool) *openapi3.SchemaRef {
	customize := func(_ string, ft reflect.Type, _ reflect.StructTag, s *openapi3.Schema) error {
		switch {
		case ft == uuidType:
			*s = openapi3.Schema{Type: &openapi3.Types{"string"}, Format: "uuid", Nullable: s.Nullable}
		case ft == timeType:
			s.Pattern = `Z$` // RFC 3339 in UTC, as SPEC says every timestamp is
		case ft.Implements(textMarshalerType) || reflect.PointerTo(ft).Implements(textMarshalerType):
			*s = openapi3.Schema{Type: &openapi3.Types{"string"}, Nullable: s.Nullable}
		case ft.Kind() == reflect.Interface:
			s.Nullable = true
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Uint8 && s.Type == nil:
			s.Nullable = true // json.RawMessage: any JSON
		case ft.Kind() == reflect.Struct && !request:
			s.Required = requiredFields(ft)
		case ft.Kind() == reflect.Uint64:
			s.Max = nil // 2^64-1 is no JSON number a client can hold exactly
		}
		return nil
	}
	ref, err := openapi3gen.NewGenerator(openapi3gen.SchemaCustomizer(customize)).GenerateSchemaRef(t)
	if err != nil {
		panic(fmt.Sprintf("openapi: schema of %v: %v", t, err))
	}
	inline(ref)
	return &openapi3.SchemaRef{Value: ref.Value}
}

// inline drops the Go type names openapi3gen leaves in Ref: every schema it
// made is written in place.
func inline(ref *openapi3.SchemaRef) {
	if ref == nil {
		return
	}
	ref.Ref = ""
	s := ref.Value
	if s == nil {
		return
	}
	for _, p := range s.Properties {
		inline(p)
	}
	inline(s.Items)
	inline(s.AdditionalProperties.Schema)
	for _, x := range slices.Concat(s.AllOf, s.OneOf, s.AnyOf) {
		inline(x)
	}
}

// requiredFields are the JSON fields of struct t that encoding/json always
// writes (no omitempty), embedded structs included.
func requiredFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		tag, hasTag := f.Tag.Lookup("json")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && !hasTag && ft.Kind() == reflect.Struct {
			if f.Type.Kind() != reflect.Pointer { // a nil embedded pointer leaves its fields out
				out = append(out, requiredFields(ft)...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// idOnly is the answer of a write whose read model is behind.
func (g *schemaGen) idOnly() *openapi3.SchemaRef {
	if _, ok := g.components["IDOnly"]; !ok {
		s := openapi3.NewObjectSchema().WithRequired([]string{"id"}).WithProperty("id", openapi3.NewUUIDSchema()).WithoutAdditionalProperties()
		s.Description = "A write's answer when the read models did not catch up in time (Companin-Read-Models: behind)"
		g.components["IDOnly"] = s.NewRef()
	}
	return componentRef("IDOnly", g.components["IDOnly"].Value)
}

func (g *schemaGen) envelopeSchema(data *openapi3.Schema) *openapi3.Schema {
	return openapi3.NewObjectSchema().WithRequired([]string{"status", "status_code", "detail", "data"}).
		WithProperty("status", openapi3.NewStringSchema().WithEnum("success")).
		WithProperty("status_code", described(openapi3.NewIntegerSchema(), "the HTTP status")).
		WithProperty("detail", openapi3.NewStringSchema().WithNullable()).
		WithProperty("data", data)
}

// envelope is the component "<name>Response": the success envelope whose
// data is what dataRef makes.
func (g *schemaGen) envelope(name string, dataRef func() *openapi3.SchemaRef) *openapi3.SchemaRef {
	if name == "" {
		env := g.envelopeSchema(nil)
		env.Properties["data"] = dataRef()
		return env.NewRef()
	}
	name += "Response"
	if _, ok := g.components[name]; !ok {
		env := g.envelopeSchema(nil)
		env.Properties["data"] = dataRef()
		g.components[name] = env.NewRef()
	}
	return componentRef(name, g.components[name].Value)
}

// Headers every answer may carry.
var answerHeaders = map[string]*openapi3.Header{
	"X-Request-ID":          header("The request's id (echoed when the client sent one)", openapi3.NewStringSchema(), true),
	"X-RateLimit-Limit":     header("Requests per hour of the organization", openapi3.NewIntegerSchema(), false),
	"X-RateLimit-Remaining": header("Requests left in this hour", openapi3.NewIntegerSchema(), false),
	"X-RateLimit-Reset":     header("When the hour ends (Unix seconds)", openapi3.NewIntegerSchema(), false),
	"Retry-After":           header("Seconds to wait before retrying", openapi3.NewIntegerSchema(), false),
	"Idempotent-Replayed":   header("true: the stored answer of an earlier request with this Idempotency-Key", openapi3.NewStringSchema().WithEnum("true"), false),
	HeaderReadModels:        header("behind: the write stands, but a read right after it may not show it yet", openapi3.NewStringSchema().WithEnum("behind"), false),
}

func header(desc string, schema *openapi3.Schema, required bool) *openapi3.Header {
	return &openapi3.Header{Parameter: openapi3.Parameter{Description: desc, Required: required, Schema: schema.NewRef()}}
}

// openAPIDocument describes the routes registered on s with their contract
// (openapi_schemas.go). A route without one (a test's) is described by its
// envelopes only.
func (s *Server) openAPIDocument() (*openapi3.T, error) {
	g := newSchemaGen()
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{Title: "Companin API", Version: "1",
			Description: "Every path also answers with a trailing slash. JSON answers use the envelope " +
				"{status, status_code, detail, data} (lists add meta {has_more, next_cursor}); errors " +
				"{status: error, status_code, detail, data: null or {code, errors: [{field, message}]}}. " +
				"POST accepts Idempotency-Key. Authenticated responses carry X-RateLimit-Limit, X-RateLimit-Remaining " +
				"and X-RateLimit-Reset."},
		Servers: openapi3.Servers{{URL: APIPrefix}},
		Paths:   openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas:   g.components,
			Responses: g.responses,
			SecuritySchemes: openapi3.SecuritySchemes{
				"apiKey":      &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").WithName("X-API-Key")},
				"apiSecret":   &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").WithName("X-API-Secret")},
				"widgetToken": &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().WithDescription("POST /auth/widget-token; scoped to widget routes")},
			},
			Headers: openapi3.Headers{},
		},
	}
	for name, h := range answerHeaders {
		doc.Components.Headers[name] = &openapi3.HeaderRef{Value: h}
	}
	var tags []string
	for _, rt := range s.sortedRoutes() {
		path, external := strings.CutPrefix(rt.Path, APIPrefix)
		external = !external
		path = pathParam.ReplaceAllString(path, "{$1}")
		key := rt.Method + " " + path
		c, known := contract[key]
		if !known {
			c = operation{Summary: "(no contract)", Answers: []answerSpec{{Status: http.StatusOK, Description: "Success envelope", Schema: func(g *schemaGen) *openapi3.SchemaRef {
				return g.envelope("", func() *openapi3.SchemaRef { return &openapi3.SchemaRef{Value: &openapi3.Schema{Nullable: true}} })
			}}}}
		}
		item := doc.Paths.Value(path)
		if item == nil {
			item = &openapi3.PathItem{}
			if external {
				item.Servers = openapi3.Servers{{URL: "/"}}
			}
			doc.Paths.Set(path, item)
		}
		op := g.operation(rt, path, c)
		if c.Tag != "" && !slices.Contains(tags, c.Tag) {
			tags = append(tags, c.Tag)
		}
		item.SetOperation(rt.Method, op)
	}
	for key, events := range sseData {
		item := doc.Paths.Value(strings.SplitN(key, " ", 2)[1])
		if item == nil || item.GetOperation(strings.SplitN(key, " ", 2)[0]) == nil {
			continue
		}
		names := map[string]any{}
		for event, schema := range events {
			names[event] = schema(g).Ref
		}
		for _, r := range item.GetOperation(strings.SplitN(key, " ", 2)[0]).Responses.Map() {
			if mt := r.Value.Content["text/event-stream"]; mt != nil {
				mt.Extensions = map[string]any{"x-sse-events": names}
			}
		}
	}
	sort.Strings(tags)
	for _, t := range tags {
		doc.Tags = append(doc.Tags, &openapi3.Tag{Name: t})
	}
	return doc, nil
}

// operation is one route's operation: its contract plus what every route of
// its scope and method reads and answers.
func (g *schemaGen) operation(rt route, path string, c operation) *openapi3.Operation {
	op := &openapi3.Operation{OperationID: operationID(rt.Method, path), Summary: c.Summary, Responses: openapi3.NewResponses()}
	if c.Tag != "" {
		op.Tags = []string{c.Tag}
	}
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		schema := openapi3.NewStringSchema()
		if m[1] == "id" || strings.HasSuffix(m[1], "_id") {
			schema = openapi3.NewUUIDSchema()
		}
		p := openapi3.NewPathParameter(m[1]).WithSchema(schema)
		if m[1] == "ref" {
			p.Description = "The context's id or its user_reference"
		}
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: p})
	}
	for _, p := range c.Query {
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: p})
	}
	for _, p := range c.Headers {
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: p})
	}
	authenticated := rt.Scope != ScopePublic
	if rt.Method == http.MethodPost && authenticated {
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewHeaderParameter("Idempotency-Key").
			WithDescription("A retry with the same key and body answers the stored response; another body is a 422").
			WithSchema(openapi3.NewStringSchema().WithMaxLength(maxIdempotencyKeyLen))})
	}
	if c.Body != nil {
		media := c.Body.Media
		if media == "" {
			media = "application/json"
		}
		op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).
			WithContent(openapi3.Content{media: openapi3.NewMediaType().WithSchemaRef(c.Body.Schema(g))})}
	}
	switch rt.Scope {
	case ScopePublic:
		op.Security = &openapi3.SecurityRequirements{}
	case ScopeAPI:
		op.Security = &openapi3.SecurityRequirements{openapi3.NewSecurityRequirement().Authenticate("apiKey").Authenticate("apiSecret")}
	case ScopeWidget:
		op.Security = &openapi3.SecurityRequirements{openapi3.NewSecurityRequirement().Authenticate("apiKey").Authenticate("apiSecret"),
			openapi3.NewSecurityRequirement().Authenticate("widgetToken")}
	}
	for _, a := range c.Answers {
		resp := openapi3.NewResponse().WithDescription(a.Description)
		resp.Content = openapi3.Content{}
		for _, m := range append([]answerSpec{a}, a.Also...) {
			media := m.Media
			if media == "" {
				media = "application/json"
			}
			resp.Content[media] = openapi3.NewMediaType().WithSchemaRef(m.Schema(g))
		}
		resp.Headers = g.headers(rt, path, a.Status)
		op.Responses.Set(fmt.Sprint(a.Status), &openapi3.ResponseRef{Value: resp})
	}
	for _, status := range g.errorStatuses(rt, path, c) {
		if op.Responses.Status(status) != nil {
			continue
		}
		op.Responses.Set(fmt.Sprint(status), g.errorResponse(rt, path, status))
	}
	return op
}

// errorResponse is the shared component of an error status: one per status
// and per kind of route, as their headers differ.
func (g *schemaGen) errorResponse(rt route, path string, status int) *openapi3.ResponseRef {
	headers := g.headers(rt, path, status)
	name := fmt.Sprintf("Error%d", status)
	if _, limited := headers["X-RateLimit-Limit"]; limited {
		name += "Limited"
	}
	if _, ok := g.responses[name]; !ok {
		resp := openapi3.NewResponse().WithDescription(statusText[status]).
			WithContent(openapi3.Content{"application/json": openapi3.NewMediaType().WithSchemaRef(componentRef("Error", g.components["Error"].Value))})
		resp.Headers = headers
		g.responses[name] = &openapi3.ResponseRef{Value: resp}
	}
	return &openapi3.ResponseRef{Ref: "#/components/responses/" + name, Value: g.responses[name].Value}
}

// errorStatuses are the error statuses rt answers: those of every route
// of its kind and the contract's own.
func (g *schemaGen) errorStatuses(rt route, path string, c operation) []int {
	out := []int{http.StatusUnprocessableEntity, http.StatusInternalServerError} // a query parameter the log cannot keep; a failure
	if rt.Scope != ScopePublic {
		out = append(out, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests)
	}
	if c.Body != nil || rt.Method == http.MethodPost || rt.Method == http.MethodPatch {
		out = append(out, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
	}
	if strings.Contains(path, "{") {
		out = append(out, http.StatusNotFound)
	}
	if rt.Scope != ScopePublic && rt.Method != http.MethodGet {
		out = append(out, http.StatusConflict)
	}
	out = append(out, c.Errors...)
	slices.Sort(out)
	return slices.Compact(out)
}

// headers are the response headers of an answer of rt with status. The
// rate-limit headers are on every answer to a caller the server identified;
// they are required where the caller always is (a success, a refused scope
// or origin, a resource not found, the limit reached), and may be missing
// where the refusal came first (bad credentials, a header the log cannot
// keep). The widget token shows its own limits.
func (g *schemaGen) headers(rt route, path string, status int) openapi3.Headers {
	h := openapi3.Headers{"X-Request-ID": headerRef("X-Request-ID")}
	limited := rt.Scope != ScopePublic || path == "/auth/widget-token"
	identified := status < 300 || status == http.StatusForbidden || status == http.StatusNotFound || status == http.StatusTooManyRequests
	if limited {
		for _, n := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			h[n] = headerRef(n)
			if identified {
				h[n] = requiredHeaderRef(n)
			}
		}
	}
	authenticated := rt.Scope != ScopePublic
	switch status {
	case http.StatusTooManyRequests:
		h["Retry-After"] = requiredHeaderRef("Retry-After")
	case http.StatusConflict:
		h["Retry-After"] = headerRef("Retry-After")
	}
	method := rt.Method
	if method == http.MethodPost && authenticated {
		h["Idempotent-Replayed"] = headerRef("Idempotent-Replayed")
	}
	if method != http.MethodGet && status < 300 {
		h[HeaderReadModels] = headerRef(HeaderReadModels)
	}
	return h
}

func headerRef(name string) *openapi3.HeaderRef {
	return &openapi3.HeaderRef{Ref: "#/components/headers/" + name, Value: answerHeaders[name]}
}

// requiredHeaderRef is the header name, required on this answer: written in
// place, as a component's required says nothing of one answer.
func requiredHeaderRef(name string) *openapi3.HeaderRef {
	h := *answerHeaders[name]
	h.Required = true
	return &openapi3.HeaderRef{Value: &h}
}

// operationID names an operation after its method and path: GET
// /assistants/{id} -> getAssistantsById, POST
// /sessions/{id}/messages/{message_id}/feedback ->
// postSessionsByIdMessagesByMessageIdFeedback.
func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	path = pathParam.ReplaceAllStringFunc(path, func(p string) string { return "by-" + strings.Trim(p, "{}") })
	parts := strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '-' || r == '.' || r == '_' })
	for _, p := range parts {
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
	}
	return b.String()
}

// sortedRoutes is the route table in a stable order, for tests and docs.
func (s *Server) sortedRoutes() []route {
	out := append([]route(nil), s.table...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

func described(s *openapi3.Schema, desc string) *openapi3.Schema {
	s.Description = desc
	return s
}
