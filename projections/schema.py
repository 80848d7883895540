"""The SQLite projection's schema, as named migrations applied in order."""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("0001_initial", """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
        CREATE TABLE memories (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            text TEXT,
            tags TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            state TEXT NOT NULL,
            proven INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            idempotency_key TEXT,
            redactions INTEGER NOT NULL DEFAULT 0,
            embedded_by TEXT,
            recalls INTEGER NOT NULL DEFAULT 0,
            last_recalled_at TEXT,
            reprieves INTEGER NOT NULL DEFAULT 0,
            expiry_reason TEXT
        );
        CREATE INDEX memories_by_state ON memories (state, project);
        CREATE INDEX memories_by_key ON memories (idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        CREATE VIRTUAL TABLE memories_fts USING fts5 (text, tokenize = 'porter unicode61');
        CREATE TABLE links (a INTEGER, b INTEGER, similarity REAL NOT NULL, seq INTEGER NOT NULL,
                            PRIMARY KEY (a, b)) WITHOUT ROWID;
        CREATE INDEX links_by_b ON links (b);
        CREATE TABLE clusters (id INTEGER PRIMARY KEY, cohesion REAL NOT NULL,
                               created_at TEXT NOT NULL, consolidated_into INTEGER);
        CREATE TABLE cluster_members (cluster INTEGER, memory INTEGER,
                                      PRIMARY KEY (cluster, memory)) WITHOUT ROWID;
        CREATE TABLE lineage (child INTEGER, parent INTEGER,
                              PRIMARY KEY (child, parent)) WITHOUT ROWID;
        CREATE TABLE routes (memory INTEGER, target TEXT, section TEXT NOT NULL,
                             action TEXT NOT NULL, verdict TEXT NOT NULL, seq INTEGER NOT NULL,
                             PRIMARY KEY (memory, target)) WITHOUT ROWID;
        CREATE TABLE thresholds (model TEXT, name TEXT, value REAL NOT NULL, seq INTEGER NOT NULL,
                                 PRIMARY KEY (model, name)) WITHOUT ROWID;
        CREATE TABLE unknown_events (seq INTEGER PRIMARY KEY, tag TEXT NOT NULL);
        INSERT INTO meta (key, value) VALUES ('applied_seq', 0);
    """),
    # Lifecycle signals: repeats of the same text, and the seq of the last event that showed
    # the memory is alive (store, link, recall, repeat, reprieve): ageing counts from there.
    ("0002_lifecycle", """
        ALTER TABLE memories ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE memories ADD COLUMN refreshed_seq INTEGER NOT NULL DEFAULT 0;
    """),
    # Forgets requested and not yet completed (a restart resumes them).
    ("0003_forget_requests", """
        CREATE TABLE forget_requests (seq INTEGER PRIMARY KEY, memories TEXT NOT NULL,
                                      keep_descendants INTEGER NOT NULL);
    """),
    # Exposure apart from use: what each session was shown (no text), and the evidence that a
    # shown memory was used. ``recalls`` counts uses (explicit recalls and detected uses);
    # ``shown`` counts exposures, which neither promote nor refresh a memory.
    ("0004_usage", """
        ALTER TABLE memories ADD COLUMN shown INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE shown_in (session TEXT, memory INTEGER, seq INTEGER,
                               prompt_hash TEXT NOT NULL,
                               PRIMARY KEY (session, memory, seq)) WITHOUT ROWID;
        CREATE TABLE used_in (session TEXT, memory INTEGER, evidence TEXT NOT NULL,
                              seq INTEGER NOT NULL,
                              PRIMARY KEY (session, memory)) WITHOUT ROWID;
    """),
    # Pinned memories never age out (the viewer's pin).
    ("0005_pins", """
        ALTER TABLE memories ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
    """),
    # A memory's clusters (the viewer's graph asks for each node's).
    ("0006_cluster_members_by_memory", """
        CREATE INDEX cluster_members_by_memory ON cluster_members (memory, cluster);
    """),
    # The seqs of each memory's events (its history without a scan of the log); a database
    # folded before it notes how far, to be indexed from the log at start.
    ("0007_memory_events", """
        CREATE TABLE memory_events (memory INTEGER, seq INTEGER,
                                    PRIMARY KEY (memory, seq)) WITHOUT ROWID;
        INSERT INTO meta (key, value) SELECT 'memory_events_through', value FROM meta
            WHERE key = 'applied_seq' AND value > 0;
    """),
)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this database has not seen yet, each in its own transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)")
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    for name, script in MIGRATIONS:
        if name in done:
            continue
        conn.executescript(f"BEGIN;\n{script}\nINSERT INTO migrations VALUES ('{name}');\nCOMMIT;")
