-- A school information system's tables (a small sample), and the two views the education
-- connector polls. Views are the connector's contract with the school system: they give both
-- kinds of concern one shape, whatever the tables look like.

CREATE TABLE pupils (
    pupil_id TEXT PRIMARY KEY,
    upn TEXT,
    nhs_number TEXT,
    forename TEXT,
    surname TEXT,
    dob TEXT,
    sex TEXT,
    postcode TEXT
);

CREATE TABLE attendance_alerts (
    alert_id INTEGER PRIMARY KEY,
    pupil_id TEXT NOT NULL REFERENCES pupils (pupil_id),
    kind TEXT NOT NULL,                      -- ATTENDANCE_DROP or CHILD_MISSING_EDUCATION
    attendance_percent REAL,
    previous_attendance_percent REAL,
    raised_at TEXT NOT NULL,                 -- ISO 8601 with zone
    updated_at TEXT NOT NULL                 -- the poll cursor
);

CREATE TABLE safeguarding_concerns (
    concern_id INTEGER PRIMARY KEY,
    pupil_id TEXT NOT NULL REFERENCES pupils (pupil_id),
    category TEXT,
    detail TEXT,
    logged_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE VIEW mash_attendance AS
SELECT 'ATT-' || a.alert_id AS concern_id, p.pupil_id, p.upn, p.nhs_number, p.forename, p.surname, p.dob,
       p.sex, p.postcode, '107942' AS school_urn, a.kind AS concern_kind, a.attendance_percent,
       a.previous_attendance_percent, NULL AS safeguarding_category, NULL AS detail,
       a.raised_at AS logged_at, a.updated_at
FROM attendance_alerts a JOIN pupils p ON p.pupil_id = a.pupil_id;

CREATE VIEW mash_safeguarding AS
SELECT 'SG-' || c.concern_id AS concern_id, p.pupil_id, p.upn, p.nhs_number, p.forename, p.surname, p.dob,
       p.sex, p.postcode, '107942' AS school_urn, 'SAFEGUARDING_CONCERN' AS concern_kind,
       NULL AS attendance_percent, NULL AS previous_attendance_percent, c.category AS safeguarding_category,
       c.detail, c.logged_at, c.updated_at
FROM safeguarding_concerns c JOIN pupils p ON p.pupil_id = c.pupil_id;

INSERT INTO pupils VALUES ('P00001', 'B820200114491', '9578308620', 'Amelia', 'Hughes', '2016-04-12', 'F', 'LS6 2QT');
INSERT INTO pupils VALUES ('P00003', 'M820200114380', NULL, 'Isla', 'Novak', '2012-02-28', 'F', 'LS11 5DJ');
INSERT INTO pupils VALUES ('P00005', 'A820200114934', NULL, 'Ava', 'Okafor', '2013-11-30', 'F', 'LS12 3PL');
INSERT INTO pupils VALUES ('P00007', 'J820200114075', NULL, 'Mia', 'Ahmed', '2017-01-23', 'F', 'LS7 4BS');
INSERT INTO pupils VALUES ('P00008', 'E820200114707', '4148546610', 'Harry', 'Lewis', '2011-08-14', 'M', 'LS14 6TE');
INSERT INTO pupils VALUES ('P00009', 'H820200114601', NULL, 'Freya', 'Clarke', '2015-03-03', 'F', 'LS2 9JT');
INSERT INTO pupils VALUES ('P00012', 'Y820200114431', NULL, 'Theo', 'Jones', '2016-21-10', 'M', 'LS16 5HX');

INSERT INTO attendance_alerts VALUES (1, 'P00001', 'ATTENDANCE_DROP', 71.5, 96.0, '2026-11-06T15:15:00Z', '2026-11-06 15:15:00');
INSERT INTO attendance_alerts VALUES (2, 'P00005', 'ATTENDANCE_DROP', 82.0, 94.5, '2026-11-15T15:15:00Z', '2026-11-15 15:15:00');
INSERT INTO attendance_alerts VALUES (3, 'P00008', 'CHILD_MISSING_EDUCATION', NULL, NULL, '2026-11-12T15:15:00Z', '2026-11-12 15:15:00');
INSERT INTO attendance_alerts VALUES (4, 'P00009', 'ATTENDANCE_DROP', 88.0, 97.0, '2026-11-02T15:15:00Z', '2026-11-02 15:15:00');

INSERT INTO safeguarding_concerns VALUES (1, 'P00003', 'NEGLECT', 'Arrives hungry, same clothes all week', '2026-11-02T15:15:00Z', '2026-11-02 15:15:00');
INSERT INTO safeguarding_concerns VALUES (2, 'P00007', 'EMOTIONAL', 'Disclosed arguments at home, "scared"', '2026-11-13T15:15:00Z', '2026-11-13 15:15:00');
INSERT INTO safeguarding_concerns VALUES (3, 'P00012', 'PHYSICAL', 'Bruising; date of birth keyed wrongly', '2026-11-03T15:15:00Z', '2026-11-03 15:15:00');
