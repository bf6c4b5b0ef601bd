-- People of a title from a knowledge graph (MovieLens' .link + .kg): director, actors,
-- writers, producers, cinematographers. `relation` is the role, `entity_id` the graph's id
-- for the person. Content similarity at training time reads it.
CREATE TABLE title_entities (
    title_id   TEXT NOT NULL REFERENCES titles (id),
    relation   TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    PRIMARY KEY (title_id, relation, entity_id)
);
