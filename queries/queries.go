package queries

// Queries are the read use cases the API offers, built once (cmd/companin)
// over the read models' database and shared by every request.
type Queries struct {
	FindClient          FindClientHandler
	GetAssistant        GetHandler[Assistant]
	ListAssistants      ListHandler[Assistant]
	GetWidgetConfig     GetHandler[WidgetConfig]
	ListWidgetConfigs   ListHandler[WidgetConfig]
	GetThread           GetThreadHandler
	ListConversations   ListConversationsHandler
	ListMessages        ListMessagesHandler
	GetMessage          GetMessageHandler
	GetUserContext      GetUserContextHandler
	GetKnowledge        GetKnowledgeHandler
	ListKnowledge       ListKnowledgeHandler
	ListKnowledgeChunks ListKnowledgeChunksHandler
	SearchKnowledge     SearchKnowledgeHandler
}

// DB is what the queries need of the read models' database (*pgxpool.Pool).
type DB interface {
	resourcesDB
	knowledgeSearchDB
}

// New builds every query over db.
func New(db DB) Queries {
	return Queries{
		FindClient:          NewFindClientHandler(db),
		GetAssistant:        GetHandler[Assistant]{db, assistants},
		ListAssistants:      ListHandler[Assistant]{db, assistants},
		GetWidgetConfig:     GetHandler[WidgetConfig]{db, widgetConfigs},
		ListWidgetConfigs:   ListHandler[WidgetConfig]{db, widgetConfigs},
		GetThread:           NewGetThreadHandler(db),
		ListConversations:   NewListConversationsHandler(db),
		ListMessages:        NewListMessagesHandler(db),
		GetMessage:          NewGetMessageHandler(db),
		GetUserContext:      NewGetUserContextHandler(db),
		GetKnowledge:        NewGetKnowledgeHandler(db),
		ListKnowledge:       NewListKnowledgeHandler(db),
		ListKnowledgeChunks: NewListKnowledgeChunksHandler(db),
		SearchKnowledge:     NewSearchKnowledgeHandler(db),
	}
}
