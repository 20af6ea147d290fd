package httpapi

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
)

var pathParam = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

// openAPI describes the routes actually registered, so the document cannot
// drift from the router: paths, methods, path parameters, authentication,
// and the envelopes every answer uses.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	paths := map[string]map[string]any{}
	for _, rt := range s.table {
		if !strings.HasPrefix(rt.Path, APIPrefix) {
			continue
		}
		p := pathParam.ReplaceAllString(strings.TrimPrefix(rt.Path, APIPrefix), "{$1}")
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{
			"operationId": operationID(rt.Method, p),
			"responses": map[string]any{
				"default": map[string]any{
					"description": "Error envelope",
					"content":     map[string]any{"application/json": map[string]any{"schema": ref("Error")}},
				},
			},
		}
		success := map[string]any{"description": "Success envelope", "content": map[string]any{"application/json": map[string]any{"schema": ref("Success")}}}
		if p == "/auth/widget-token" {
			success = map[string]any{"description": "Widget token", "content": map[string]any{"application/json": map[string]any{"schema": ref("WidgetToken")}}}
		}
		op["responses"].(map[string]any)["2XX"] = success
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if rt.Method == http.MethodGet && !strings.HasSuffix(p, "}") {
			params = append(params,
				map[string]any{"name": "limit", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": maxPageSize, "default": defaultPageSize}},
				map[string]any{"name": "cursor", "in": "query", "schema": map[string]any{"type": "string"}})
		}
		if rt.Method == http.MethodPost && rt.Scope != ScopePublic {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "schema": map[string]any{"type": "string", "maxLength": maxIdempotencyKeyLen}})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.Method == http.MethodPost || rt.Method == http.MethodPatch || rt.Method == http.MethodPut {
			op["requestBody"] = map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		}
		switch rt.Scope {
		case ScopePublic:
			op["security"] = []any{}
		case ScopeAPI:
			op["security"] = []any{map[string]any{"apiKey": []any{}, "apiSecret": []any{}}}
		case ScopeWidget:
			op["security"] = []any{map[string]any{"apiKey": []any{}, "apiSecret": []any{}}, map[string]any{"widgetToken": []any{}}}
		}
		paths[p][strings.ToLower(rt.Method)] = op
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Companin API",
			"version":     "1",
			"description": "Every path also answers with a trailing slash. POST accepts Idempotency-Key. Authenticated responses carry X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset.",
		},
		"servers": []any{map[string]any{"url": APIPrefix}},
		"paths":   paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"apiKey":      map[string]any{"type": "apiKey", "in": "header", "name": "X-API-Key"},
				"apiSecret":   map[string]any{"type": "apiKey", "in": "header", "name": "X-API-Secret"},
				"widgetToken": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
			},
			"schemas": map[string]any{
				"Success": map[string]any{
					"type":     "object",
					"required": []string{"status", "status_code", "detail", "data"},
					"properties": map[string]any{
						"status":      map[string]any{"type": "string", "enum": []string{"success"}},
						"status_code": map[string]any{"type": "integer"},
						"detail":      map[string]any{"type": "string", "nullable": true},
						"data":        map[string]any{},
						"meta": map[string]any{"type": "object", "properties": map[string]any{
							"has_more":    map[string]any{"type": "boolean"},
							"next_cursor": map[string]any{"type": "string", "nullable": true},
						}},
					},
				},
				"Error": map[string]any{
					"type":     "object",
					"required": []string{"status", "status_code", "detail", "data"},
					"properties": map[string]any{
						"status":      map[string]any{"type": "string", "enum": []string{"error"}},
						"status_code": map[string]any{"type": "integer"},
						"detail":      map[string]any{"type": "string"},
						"data": map[string]any{"type": "object", "nullable": true, "properties": map[string]any{
							"code": map[string]any{"type": "string"},
							"errors": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
								"field":   map[string]any{"type": "string"},
								"message": map[string]any{"type": "string"},
							}}},
						}},
					},
				},
				"WidgetToken": map[string]any{
					"type":     "object",
					"required": []string{"token", "expires_in", "token_type"},
					"properties": map[string]any{
						"token":      map[string]any{"type": "string"},
						"expires_in": map[string]any{"type": "integer"},
						"token_type": map[string]any{"type": "string", "enum": []string{"Bearer"}},
					},
				},
			},
		},
	}
	writeJSON(w, http.StatusOK, doc)
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

// operationID names an operation after its method and path: GET
// /assistants/{id} -> getAssistantsById.
func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	parts := strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '-' || r == '.' || r == '_' })
	for _, p := range parts {
		if strings.HasPrefix(p, "{") {
			p = "By" + strings.Trim(p, "{}")
		}
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
