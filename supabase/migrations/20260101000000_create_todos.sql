-- Up Migration
-- A sample: a signed-in user's own tasks, readable and writable only by that user.
CREATE TABLE public.todos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id uuid NOT NULL DEFAULT (current_setting('request.jwt.claims', true)::json ->> 'sub')::uuid,
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    done boolean NOT NULL DEFAULT false,
    inserted_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.todos IS 'A signed-in user''s tasks.';

-- Every table in an exposed schema gets row level security.
ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY todos_owner ON public.todos FOR ALL TO authenticated
    USING (owner_id = (current_setting('request.jwt.claims', true)::json ->> 'sub')::uuid)
    WITH CHECK (owner_id = (current_setting('request.jwt.claims', true)::json ->> 'sub')::uuid);

-- Down Migration
DROP TABLE public.todos;
