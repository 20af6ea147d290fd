package commands

import (
	"time"

	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/domain/widgetconfig"
)

// The commands on settings aggregates and knowledge sources share one
// handler each for create, update and by-id decisions (change.go); these
// names say which use case a value is.
type (
	CreateAssistant    = Create[assistant.Input]
	UpdateAssistant    = Update[assistant.Input]
	DeleteAssistant    = ByID
	CreateWidgetConfig = Create[widgetconfig.Input]
	UpdateWidgetConfig = Update[widgetconfig.Input]
	RemoveKnowledge    = ByID
	RefreshKnowledge   = ByID
)

// Commands are the write use cases the API offers, built once (cmd/companin)
// and shared by every request.
type Commands struct {
	CreateAssistant    CreateHandler[assistant.Input]
	UpdateAssistant    UpdateHandler[assistant.Input]
	DeleteAssistant    ByIDHandler
	CreateWidgetConfig CreateHandler[widgetconfig.Input]
	UpdateWidgetConfig UpdateHandler[widgetconfig.Input]
	StartThread        StartThreadHandler
	PostMessage        PostMessageHandler
	GiveFeedback       GiveFeedbackHandler
	SaveUserContext    SaveUserContextHandler
	PatchUserContext   PatchUserContextHandler
	EraseUserContext   EraseUserContextHandler
	AddKnowledge       AddKnowledgeHandler
	RemoveKnowledge    ByIDHandler
	RefreshKnowledge   ByIDHandler
}

// Deps are what the commands share.
type Deps struct {
	Store es.Store
	// References names user_reference reservation streams; nil: unkeyed.
	References ReferenceKeys
	// Eraser destroys a data subject's key on erasure; nil: nothing is
	// encrypted, so personal fields stay in the log.
	Eraser Eraser
	// Responses forgets stored idempotent responses about an erased person; nil: none are kept.
	Responses ResponseForgetter
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// New builds every command over d.
func New(d Deps) Commands {
	assistants, configs, sources := assistants(d.Store), widgetConfigs(d.Store), knowledgeSources(d.Store)
	return Commands{
		CreateAssistant:    creating(assistants, assistant.ParseSettings, (*assistant.Assistant).Create, d.Now),
		UpdateAssistant:    updating(assistants, assistant.ErrNotFound, (*assistant.Assistant).Update, d.Now),
		DeleteAssistant:    deciding(assistants, assistant.ErrNotFound, (*assistant.Assistant).Delete, d.Now),
		CreateWidgetConfig: creating(configs, widgetconfig.ParseSettings, (*widgetconfig.Config).Create, d.Now),
		UpdateWidgetConfig: updating(configs, widgetconfig.ErrNotFound, (*widgetconfig.Config).Update, d.Now),
		StartThread:        StartThreadHandler{Store: d.Store, References: d.References, Now: d.Now},
		PostMessage:        PostMessageHandler{Store: d.Store, Now: d.Now},
		GiveFeedback:       GiveFeedbackHandler{Store: d.Store, Now: d.Now},
		SaveUserContext:    SaveUserContextHandler{Store: d.Store, References: d.References, Now: d.Now},
		PatchUserContext:   PatchUserContextHandler{Store: d.Store, References: d.References, Now: d.Now},
		EraseUserContext: EraseUserContextHandler{Store: d.Store, References: d.References, Eraser: d.Eraser,
			Responses: d.Responses, Now: d.Now},
		AddKnowledge:     AddKnowledgeHandler{Store: d.Store, Now: d.Now},
		RemoveKnowledge:  deciding(sources, knowledge.ErrNotFound, (*knowledge.Source).Remove, d.Now),
		RefreshKnowledge: deciding(sources, knowledge.ErrNotFound, (*knowledge.Source).RequestRefresh, d.Now),
	}
}
