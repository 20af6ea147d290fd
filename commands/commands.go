package commands

import (
	"time"

	"github.com/companin/companin/domain/es"
)

// Commands are the write use cases the API offers, built once (cmd/companin)
// and shared by every request.
type Commands struct {
	CreateAssistant    CreateAssistantHandler
	UpdateAssistant    UpdateAssistantHandler
	DeleteAssistant    DeleteAssistantHandler
	CreateWidgetConfig CreateWidgetConfigHandler
	UpdateWidgetConfig UpdateWidgetConfigHandler
	StartThread        StartThreadHandler
	PostMessage        PostMessageHandler
	GiveFeedback       GiveFeedbackHandler
	SaveUserContext    SaveUserContextHandler
	PatchUserContext   PatchUserContextHandler
	EraseUserContext   EraseUserContextHandler
	AddKnowledgeFile   AddKnowledgeFileHandler
	AddKnowledgeQA     AddKnowledgeQAHandler
	AddKnowledgeURL    AddKnowledgeURLHandler
	RemoveKnowledge    RemoveKnowledgeHandler
	RefreshKnowledge   RefreshKnowledgeHandler
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
	return Commands{
		CreateAssistant:    CreateAssistantHandler{Store: d.Store, Now: d.Now},
		UpdateAssistant:    UpdateAssistantHandler{Store: d.Store, Now: d.Now},
		DeleteAssistant:    DeleteAssistantHandler{Store: d.Store, Now: d.Now},
		CreateWidgetConfig: CreateWidgetConfigHandler{Store: d.Store, Now: d.Now},
		UpdateWidgetConfig: UpdateWidgetConfigHandler{Store: d.Store, Now: d.Now},
		StartThread:        StartThreadHandler{Store: d.Store, References: d.References, Now: d.Now},
		PostMessage:        PostMessageHandler{Store: d.Store, Now: d.Now},
		GiveFeedback:       GiveFeedbackHandler{Store: d.Store, Now: d.Now},
		SaveUserContext:    SaveUserContextHandler{Store: d.Store, References: d.References, Now: d.Now},
		PatchUserContext:   PatchUserContextHandler{Store: d.Store, References: d.References, Now: d.Now},
		EraseUserContext: EraseUserContextHandler{Store: d.Store, References: d.References, Eraser: d.Eraser,
			Responses: d.Responses, Now: d.Now},
		AddKnowledgeFile: AddKnowledgeFileHandler{Store: d.Store, Now: d.Now},
		AddKnowledgeQA:   AddKnowledgeQAHandler{Store: d.Store, Now: d.Now},
		AddKnowledgeURL:  AddKnowledgeURLHandler{Store: d.Store, Now: d.Now},
		RemoveKnowledge:  RemoveKnowledgeHandler{Store: d.Store, Now: d.Now},
		RefreshKnowledge: RefreshKnowledgeHandler{Store: d.Store, Now: d.Now},
	}
}
