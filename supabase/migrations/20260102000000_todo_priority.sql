-- Up Migration
-- A sample: an enum column, a view and a function, so the API docs and typed SDKs show each kind.
CREATE TYPE public.todo_priority AS ENUM ('low', 'normal', 'high');
ALTER TABLE public.todos ADD COLUMN priority public.todo_priority NOT NULL DEFAULT 'normal';

-- security_invoker: the view reads todos with the caller's rights, so its RLS still applies.
CREATE VIEW public.open_todos WITH (security_invoker = true) AS
    SELECT id, title, priority FROM public.todos WHERE NOT done;

CREATE FUNCTION public.complete_todo(todo_id bigint) RETURNS SETOF public.todos
LANGUAGE sql SECURITY INVOKER AS $$
    UPDATE public.todos SET done = true WHERE id = todo_id RETURNING *;
$$;

-- Down Migration
DROP FUNCTION public.complete_todo(bigint);
DROP VIEW public.open_todos;
ALTER TABLE public.todos DROP COLUMN priority;
DROP TYPE public.todo_priority;
