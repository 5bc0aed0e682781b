// Example function: GET/POST /functions/v1/hello?name=... -> {"message": "Hello <name>!"}
Deno.serve(async (req: Request) => {
  const url = new URL(req.url);
  let name = url.searchParams.get("name") ?? "world";
  if (req.method === "POST" && req.headers.get("content-type")?.includes("application/json")) {
    const body = await req.json().catch(() => ({}));
    if (typeof body.name === "string") name = body.name;
  }
  return new Response(JSON.stringify({ message: `Hello ${name}!` }), {
    headers: { "Content-Type": "application/json", Connection: "keep-alive" },
  });
});
