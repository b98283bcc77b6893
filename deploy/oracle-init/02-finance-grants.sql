-- First start of the oracle service only; run by SQL*Plus as SYS in the CDB
-- root, and any error stops the container. Gives FINANCE, the application
-- schema Bulwark backs up (created by the image from APP_USER, with
-- DB_DEVELOPER_ROLE and unlimited quota on USERS), exactly what Bulwark's
-- Oracle worker uses, granted directly rather than through roles so that it
-- also holds inside PL/SQL:
--   - a consistent logical export: a read-only transaction, or AS OF SCN
--     queries at an SCN read from DBMS_FLASHBACK or V$DATABASE;
--   - Data Pump exports and imports of its own schema through BULWARK_DP,
--     read back and written over SQL with BFILEs and UTL_FILE;
--   - restores that recreate its objects.
-- Flashback of FINANCE's own tables needs no grant: an owner holds the
-- FLASHBACK privilege on its tables. Nothing here reaches other schemas (no
-- ANY privileges, no DATAPUMP_EXP_FULL_DATABASE).
WHENEVER SQLERROR EXIT FAILURE
ALTER SESSION SET CONTAINER = FREEPDB1;

CREATE OR REPLACE DIRECTORY BULWARK_DP AS '/opt/oracle/oradata/bulwark_dp';
GRANT READ, WRITE ON DIRECTORY BULWARK_DP TO finance;

GRANT CREATE SESSION, CREATE TABLE, CREATE VIEW, CREATE SEQUENCE, CREATE SYNONYM,
      CREATE PROCEDURE, CREATE TRIGGER, CREATE TYPE, CREATE MATERIALIZED VIEW
   TO finance;
ALTER USER finance QUOTA UNLIMITED ON USERS;

-- Often revoked from PUBLIC on hardened databases; granted by name here.
GRANT EXECUTE ON SYS.DBMS_DATAPUMP TO finance;
GRANT EXECUTE ON SYS.UTL_FILE TO finance;
GRANT EXECUTE ON SYS.DBMS_FLASHBACK TO finance;
GRANT EXECUTE ON SYS.DBMS_METADATA TO finance;
GRANT EXECUTE ON SYS.DBMS_LOB TO finance;

-- CURRENT_SCN, LOG_MODE and FLASHBACK_ON, without SELECT_CATALOG_ROLE.
GRANT SELECT ON SYS.V_$DATABASE TO finance;

EXIT
