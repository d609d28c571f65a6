-- `ancestry` (hierarchy versions) and `scopes` are content-addressed and written by whichever
-- thread or process meets a new one first. Two meeting it at once wrote it twice, and every fact
-- joined through a doubled row counted twice. Writers now pass the content id as the insert's
-- deduplication token; a table that is not replicated deduplicates only with a window.

-- Folds written under a doubled version are wrong: clear their stamps, so the next fold
-- rebuilds them (the API recomputes from `facts` until then).
INSERT INTO projection_settings (name, value)
SELECT name, '' FROM (
    SELECT name, argMax(value, set_at) AS stamp FROM projection_settings
    WHERE name IN ('daily.tree', 'items.tree') GROUP BY name)
WHERE stamp IN (
    SELECT tree_id FROM ancestry
    GROUP BY tree_id, unit_id, start_day, end_day, ancestor, family, scope_key HAVING count() > 1);

-- Then keep one copy of each row (a kill midway: the next run starts this over).
DROP TABLE IF EXISTS ancestry_once;
CREATE TABLE ancestry_once AS ancestry;
INSERT INTO ancestry_once SELECT DISTINCT * FROM ancestry;
EXCHANGE TABLES ancestry AND ancestry_once;
DROP TABLE ancestry_once;
ALTER TABLE ancestry MODIFY SETTING non_replicated_deduplication_window = 1000;

DROP TABLE IF EXISTS scopes_once;
CREATE TABLE scopes_once AS scopes;
INSERT INTO scopes_once SELECT DISTINCT * FROM scopes;
EXCHANGE TABLES scopes AND scopes_once;
DROP TABLE scopes_once;
ALTER TABLE scopes MODIFY SETTING non_replicated_deduplication_window = 1000;
