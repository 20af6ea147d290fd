-- +goose Up
-- Read models of the API resources (projections/assistants.go,
-- projections/conversations.go, projections/user_contexts.go). Derived from
-- the event log: a rebuild truncates and refills them. seq orders lists and
-- backs their cursors.
CREATE TABLE assistants (
    seq             bigserial   NOT NULL UNIQUE,
    id              uuid        PRIMARY KEY,
    organization_id text        NOT NULL,
    name            text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    tone            text        NOT NULL DEFAULT '',
    language        text        NOT NULL DEFAULT '',
    default_tasks   jsonb       NOT NULL DEFAULT '[]',
    is_active       boolean     NOT NULL DEFAULT true,
    instructions    text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX assistants_org_seq ON assistants (organization_id, seq);

CREATE TABLE sessions (
    seq             bigserial   NOT NULL UNIQUE,
    id              uuid        PRIMARY KEY,
    organization_id text        NOT NULL,
    assistant_id    uuid        NOT NULL,
    visitor_id      text        NOT NULL,
    locale          text        NOT NULL DEFAULT '',
    metadata        jsonb       NOT NULL DEFAULT '{}',
    message_count   integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX sessions_org_seq ON sessions (organization_id, seq);

CREATE TABLE conversations (
    seq                 bigserial   NOT NULL UNIQUE,
    id                  uuid        PRIMARY KEY,
    organization_id     text        NOT NULL,
    assistant_id        uuid        NOT NULL,
    customer_id         text        NOT NULL,
    user_context_id     uuid,
    -- the linked person was erased: contents of this conversation are gone
    user_context_erased boolean     NOT NULL DEFAULT false,
    title               text        NOT NULL DEFAULT '',
    locale              text        NOT NULL DEFAULT '',
    metadata            jsonb       NOT NULL DEFAULT '{}',
    message_count       integer     NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX conversations_org_seq ON conversations (organization_id, seq);
CREATE INDEX conversations_org_customer_seq ON conversations (organization_id, customer_id, seq);
CREATE INDEX conversations_user_context ON conversations (user_context_id) WHERE user_context_id IS NOT NULL;

-- Messages of sessions and conversations (thread_kind says which). content
-- is NULL once the person it belongs to was erased.
CREATE TABLE messages (
    id              uuid        PRIMARY KEY,
    organization_id text        NOT NULL,
    thread_kind     text        NOT NULL,
    thread_id       uuid        NOT NULL,
    version         bigint      NOT NULL,
    role            text        NOT NULL,
    content         text,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    reply_to        uuid,
    sources         jsonb       NOT NULL DEFAULT '[]',
    user_context_id uuid,
    created_at      timestamptz NOT NULL
);
CREATE INDEX messages_thread_version ON messages (thread_id, version);
CREATE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_user_context ON messages (user_context_id) WHERE user_context_id IS NOT NULL;

-- User contexts; erased ones keep a row without reference and traits.
CREATE TABLE user_contexts (
    seq             bigserial   NOT NULL UNIQUE,
    id              uuid        PRIMARY KEY,
    organization_id text        NOT NULL,
    user_reference  text,
    traits          jsonb,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    erased_at       timestamptz,
    erased_by       text
);
CREATE INDEX user_contexts_org_reference ON user_contexts (organization_id, user_reference)
    WHERE erased_at IS NULL AND user_reference IS NOT NULL;
CREATE INDEX user_contexts_org_seq ON user_contexts (organization_id, seq);

-- +goose Down
DROP TABLE user_contexts;
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE sessions;
DROP TABLE assistants;
