"""The DuckDB schema as numbered migrations.

Each migration is a function decorated with :func:`migration`; it runs once per workspace, in
order, and its number is recorded in ``schema_version``. Never edit a released migration: add a
new one. ``tests/test_schema.py`` applies them all to a blank store.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["MIGRATIONS", "migration", "SCHEMA_VERSION"]

MIGRATIONS: list[tuple[int, str, Callable]] = []


def migration(fn: Callable) -> Callable:
    """Register ``fn`` (named ``mNNN_description``) as migration number NNN."""
    number = int(fn.__name__[1:4])
    if MIGRATIONS and number != MIGRATIONS[-1][0] + 1:
        raise RuntimeError(f"migration {fn.__name__} is out of sequence after {MIGRATIONS[-1][1]}")
    MIGRATIONS.append((number, fn.__name__, fn))
    return fn


@migration
def m001_core_tables(con) -> None:
    """Videos, labels, classes, folds, the feature-set registry and per-video featurize status."""
    con.execute("""
        CREATE TABLE videos (
            video_id          VARCHAR PRIMARY KEY,   -- sha1 of the absolute path, 16 hex chars
            path              VARCHAR NOT NULL UNIQUE, -- absolute path
            relpath           VARCHAR,               -- path relative to the ingest root
            filename          VARCHAR NOT NULL,      -- base name, as in Pri-matrix label files
            site              VARCHAR,               -- camera/site: parent folder of relpath
            bytes             BIGINT,
            mtime             TIMESTAMP,
            status            VARCHAR NOT NULL,      -- 'ok' | 'error'
            error             VARCHAR,               -- readable error when status = 'error'
            container         VARCHAR,
            video_codec       VARCHAR,
            pix_fmt           VARCHAR,
            width             INTEGER,
            height            INTEGER,
            fps               DOUBLE,
            frames            INTEGER,               -- frame count the container header claims
            frames_decodable  INTEGER,               -- frames that really decode (NULL: not checked)
            duration          DOUBLE,                -- seconds, from the header
            bit_rate          BIGINT,
            bytes_per_second  DOUBLE,
            has_audio         BOOLEAN,
            audio_codec       VARCHAR,
            brightness        DOUBLE,                -- camera statistics from sampled frames
            is_night          BOOLEAN,               -- grayscale / infrared
            colourfulness     DOUBLE,
            motion_energy     DOUBLE,
            stats_frames      INTEGER,               -- frames the statistics were computed on
            ingested_at       TIMESTAMP
        )""")
    con.execute("""
        CREATE TABLE classes (
            position INTEGER PRIMARY KEY,
            class    VARCHAR NOT NULL UNIQUE
        )""")
    con.execute("""
        CREATE TABLE labels (
            video_id VARCHAR NOT NULL,
            class    VARCHAR NOT NULL,
            value    TINYINT NOT NULL,
            source   VARCHAR,
            PRIMARY KEY (video_id, class)
        )""")
    con.execute("""
        CREATE TABLE fold_schemes (
            scheme     VARCHAR PRIMARY KEY,
            k          INTEGER NOT NULL,
            group_by   VARCHAR,
            seed       INTEGER,
            created_at TIMESTAMP
        )""")
    con.execute("""
        CREATE TABLE folds (
            scheme   VARCHAR NOT NULL,
            video_id VARCHAR NOT NULL,
            fold     INTEGER NOT NULL,
            PRIMARY KEY (scheme, video_id)
        )""")
    con.execute("""
        CREATE TABLE feature_sets (
            name           VARCHAR NOT NULL,   -- e.g. 'lite0_u32', 'hist_lite0'
            version        INTEGER NOT NULL,   -- 1, 2, ...: a new configuration or input makes a new version
            kind           VARCHAR NOT NULL,   -- 'frames' (Zarr group) | 'video' (Parquet table)
            config_key     VARCHAR NOT NULL,   -- hash of config + inputs; same key = same artefact
            config         JSON,               -- the full typed configuration that made it
            inputs         JSON,               -- [{"name":..., "version":...}] it was computed from
            encoder        VARCHAR,
            weights_sha256 VARCHAR,
            sampling       VARCHAR,
            input_size     INTEGER,
            dims           INTEGER,
            stage_dims     JSON,
            fold_scheme    VARCHAR,
            code_version   VARCHAR,
            location       VARCHAR,            -- path relative to the workspace root
            row_count      BIGINT,
            status         VARCHAR,            -- 'building' | 'complete'
            created_at     TIMESTAMP,
            PRIMARY KEY (name, version)
        )""")
    con.execute("""
        CREATE TABLE feature_rows (
            name      VARCHAR NOT NULL,        -- frame-level feature set
            version   INTEGER NOT NULL,
            video_id  VARCHAR NOT NULL,
            row       INTEGER NOT NULL,        -- row in the set's Zarr arrays
            status    VARCHAR NOT NULL,        -- 'pending' | 'done' | 'error'
            error     VARCHAR,
            n_valid   INTEGER,                 -- frames actually decoded
            PRIMARY KEY (name, version, video_id)
        )""")


@migration
def m002_predictions(con) -> None:
    """Probabilities written by ``jungle stack`` (out-of-fold) and ``jungle predict`` (new videos)."""
    con.execute("""
        CREATE TABLE predictions (
            model_id    VARCHAR NOT NULL,      -- saved model (folder name under models/)
            kind        VARCHAR NOT NULL,      -- 'oof' (out-of-fold, training videos) | 'predict'
            video_id    VARCHAR NOT NULL,
            class       VARCHAR NOT NULL,
            probability DOUBLE NOT NULL,
            created_at  TIMESTAMP,
            PRIMARY KEY (model_id, kind, video_id, class)
        )""")


@migration
def m003_label_events(con) -> None:
    """Append-only history of label changes made by ``jungle review`` (set and undo), with time."""
    con.execute("CREATE SEQUENCE label_event_ids START 1")
    con.execute("""
        CREATE TABLE label_events (
            event_id        BIGINT PRIMARY KEY DEFAULT nextval('label_event_ids'),
            changed_at      TIMESTAMP NOT NULL,    -- UTC
            video_id        VARCHAR NOT NULL,
            action          VARCHAR NOT NULL,      -- 'set' | 'undo'
            classes         VARCHAR[],             -- positive classes after the change (NULL: no labels)
            source          VARCHAR,               -- label source after the change
            previous        VARCHAR[],             -- positive classes before (NULL: no labels)
            previous_source VARCHAR,
            session         VARCHAR,               -- the review run that made the change
            undoes          BIGINT                 -- for 'undo': the event it reverted
        )""")


@migration
def m004_capture_times(con) -> None:
    """When each video was recorded, and where that time came from (:mod:`jungle.store.capture_times`).

    Rows ingested before have only their file's modification time: they get it as their capture
    time (``time_source`` 'mtime') and no ``probe_version``, so the next ingest reads their
    containers' times (headers only) without probing them again.
    """
    con.execute("ALTER TABLE videos ADD COLUMN captured_at TIMESTAMP")  # when recorded, UTC
    con.execute("ALTER TABLE videos ADD COLUMN utc_offset_minutes INTEGER")  # clock - UTC; NULL: zone unknown
    con.execute("ALTER TABLE videos ADD COLUMN time_source VARCHAR")  # 'csv' | 'container' | 'mtime'
    con.execute("ALTER TABLE videos ADD COLUMN probe_version INTEGER")  # header reader that wrote the row
    con.execute("UPDATE videos SET captured_at = mtime, utc_offset_minutes = 0, time_source = 'mtime' "
                "WHERE mtime IS NOT NULL")
    con.execute("""
        CREATE TABLE capture_times (
            video_id           VARCHAR PRIMARY KEY,
            captured_at        TIMESTAMP NOT NULL,    -- UTC
            utc_offset_minutes INTEGER,               -- NULL: the file gave no zone
            source             VARCHAR,               -- the times file
            line               INTEGER,               -- its line
            imported_at        TIMESTAMP
        )""")


@migration
def m005_model_choices_reviewers(con) -> None:
    """Which saved model is current: every choice (``jungle stack``, a review re-fit that scored
    better, ``jungle models use``), appended, the newest one current (:mod:`jungle.store.model_choices`);
    and who made each review label change (``label_events.reviewer``, ``jungle review --reviewer``).

    A workspace stacked before gets its newest stacked model as the first choice (the model whose
    out-of-fold rows were written last). The ``events`` views an export used to save in the
    database are dropped: every connection now makes them (:mod:`jungle.store.views`).
    """
    con.execute("CREATE SEQUENCE model_choice_ids START 1")
    con.execute("""
        CREATE TABLE model_choices (
            choice_id  BIGINT PRIMARY KEY DEFAULT nextval('model_choice_ids'),
            model_id   VARCHAR NOT NULL,      -- saved model (folder name under models/)
            chosen_at  TIMESTAMP NOT NULL,    -- UTC
            reason     VARCHAR                -- why it became current, in words
        )""")
    con.execute("""
        INSERT INTO model_choices (model_id, chosen_at, reason)
        SELECT model_id, max(created_at), 'the newest stacked model when model choices began to be recorded'
        FROM predictions WHERE kind = 'oof' AND model_id NOT LIKE 'review-%'
        GROUP BY model_id ORDER BY max(created_at) DESC, model_id LIMIT 1""")
    con.execute("ALTER TABLE label_events ADD COLUMN reviewer VARCHAR")  # the person, as they named themselves
    con.execute("DROP VIEW IF EXISTS event_predictions")
    con.execute("DROP VIEW IF EXISTS events")


@migration
def m006_blank_filter(con) -> None:
    """Which clips a blank filter skips (:mod:`jungle.store.blank_filter`): per model, each predicted
    clip's P(animal), the threshold, whether it is skipped, and how the threshold was chosen."""
    con.execute("""
        CREATE TABLE blank_filter (
            model_id        VARCHAR NOT NULL,
            video_id        VARCHAR NOT NULL,
            p_animal        DOUBLE NOT NULL,      -- 1 - P(blank)
            skip            BOOLEAN NOT NULL,     -- p_animal < threshold
            threshold       DOUBLE NOT NULL,
            max_animal_loss DOUBLE NOT NULL,      -- the share of animal clips accepted to lose
            basis           VARCHAR NOT NULL,     -- 'labels' (fitted out of fold) | 'model' (the label-free rule)
            created_at      TIMESTAMP NOT NULL,   -- UTC
            PRIMARY KEY (model_id, video_id)
        )""")


@migration
def m007_counts(con) -> None:
    """How many animals each clip shows (:mod:`jungle.store.counts`, written by ``jungle count``): the
    run that counted, per clip its counts and the single-frame baselines, its tracks, every box the
    detector found on its sampled frames (with the track it joined), counts per predicted class, and
    the reviewer's corrections with their history."""
    con.execute("""
        CREATE TABLE count_runs (
            run_key      VARCHAR PRIMARY KEY,   -- key of the counting configuration
            boxes_key    VARCHAR,               -- key of its detector and frames alone (not the tracker)
            config       JSON,                  -- the configuration (detector, tracker, frames)
            detector     JSON,                  -- the detector's lineage (weights sha256, backend)
            code_version VARCHAR,
            created_at   TIMESTAMP
        )""")
    con.execute("""
        CREATE TABLE clip_counts (
            video_id         VARCHAR PRIMARY KEY,
            run_key          VARCHAR NOT NULL,
            status           VARCHAR NOT NULL,  -- 'counted' | 'skipped' (nothing to count) | 'error'
            reason           VARCHAR,           -- why skipped, or the error
            frames           INTEGER,           -- sampled frames the detector looked at
            frame_indices    INTEGER[],         -- their display indices
            maxn             INTEGER,           -- most tracks alive at once
            tracks           INTEGER,           -- distinct tracks
            best_frame_index INTEGER,           -- display index of the frame shown for the count
            bbox_x           DOUBLE,            -- box around that frame's animals, fractions of the frame
            bbox_y           DOUBLE,
            bbox_w           DOUBLE,
            bbox_h           DOUBLE,
            best_frame_boxes INTEGER,           -- boxes on the frame with the best single box (baseline)
            max_frame_boxes  INTEGER,           -- most boxes on any frame (baseline)
            seconds          DOUBLE,            -- decoding, detector and tracking
            counted_at       TIMESTAMP
        )""")
    con.execute("""
        CREATE TABLE tracks (
            video_id          VARCHAR NOT NULL,
            track_id          INTEGER NOT NULL,  -- 1, 2, ... in order of appearance
            class             VARCHAR,           -- predicted class of the track (NULL: none)
            class_probability DOUBLE,
            first_frame       INTEGER,           -- display indices of its first and last box
            last_frame        INTEGER,
            first_s           DOUBLE,
            last_s            DOUBLE,
            boxes             INTEGER,           -- frames with a box
            mean_score        DOUBLE,
            moving            DOUBLE,            -- median share of its boxes' pixels that moved
            counted           BOOLEAN,           -- FALSE: a still thing (its boxes do not move), not counted
            PRIMARY KEY (video_id, track_id)
        )""")
    con.execute("""
        CREATE TABLE track_boxes (
            video_id    VARCHAR NOT NULL,
            frame_index INTEGER NOT NULL,        -- display index of the sampled frame
            timestamp   DOUBLE,
            track_id    INTEGER,                 -- NULL: the box joined no confirmed track
            score       DOUBLE,
            moving      DOUBLE,                  -- share of the box's pixels that moved (the clip's motion)
            x           DOUBLE,                  -- top-left corner, width, height: fractions of the frame
            y           DOUBLE,
            w           DOUBLE,
            h           DOUBLE
        )""")
    con.execute("""
        CREATE TABLE clip_class_counts (
            video_id VARCHAR NOT NULL,
            class    VARCHAR NOT NULL,
            maxn     INTEGER,
            tracks   INTEGER,
            PRIMARY KEY (video_id, class)
        )""")
    con.execute("""
        CREATE TABLE count_labels (
            video_id   VARCHAR PRIMARY KEY,
            count      INTEGER NOT NULL,         -- animals, as a person counted them
            source     VARCHAR,
            changed_at TIMESTAMP
        )""")
    con.execute("CREATE SEQUENCE count_event_ids START 1")
    con.execute("""
        CREATE TABLE count_events (
            event_id   BIGINT PRIMARY KEY DEFAULT nextval('count_event_ids'),
            changed_at TIMESTAMP NOT NULL,       -- UTC
            video_id   VARCHAR NOT NULL,
            action     VARCHAR NOT NULL,         -- 'set' | 'undo'
            count      INTEGER,                  -- after the change (NULL: no human count)
            previous   INTEGER,                  -- before (NULL: none)
            session    VARCHAR,
            reviewer   VARCHAR,
            undoes     BIGINT
        )""")


SCHEMA_VERSION = MIGRATIONS[-1][0]
