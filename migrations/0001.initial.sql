-- Users and their videos.
-- depends:

CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stored trimmed and lower-cased: A@X.io and a@x.io are one account.
    email          text        NOT NULL UNIQUE CHECK (email = lower(btrim(email))),
    password_hash  text        NOT NULL,
    display_name   text        NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 50),
    -- Bumped to revoke every token issued so far.
    token_version  integer     NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE videos (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title             text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description       text        NOT NULL DEFAULT '',
    -- The server's own name for the media on disk; the client's file name is
    -- only kept as metadata in original_filename.
    storage_key       text        NOT NULL UNIQUE,
    original_filename text,
    content_type      text        NOT NULL,
    size_bytes        bigint      NOT NULL CHECK (size_bytes > 0),
    duration_seconds  double precision,
    width             integer,
    height            integer,
    video_codec       text,
    audio_codec       text,
    has_thumbnail     boolean     NOT NULL DEFAULT false,
    views             bigint      NOT NULL DEFAULT 0 CHECK (views >= 0),
    -- clock_timestamp(), not now(): the feed's keyset order should follow
    -- the moment of insertion, not the start of a long transaction.
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The feed walks (created_at, id) descending.
CREATE INDEX videos_feed_idx ON videos (created_at DESC, id DESC);
CREATE INDEX videos_author_idx ON videos (author_id);
