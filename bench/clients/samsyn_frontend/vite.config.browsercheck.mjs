// Vite configuration for the browser check of SamSyn's frontend: SamSyn's own
// vite.config.ts, loaded unchanged, plus three overrides. Run from the frontend folder:
//
//   VITE_CLERK_PUBLISHABLE_KEY=pk_test_browsercheck \
//     npx vite build --config /path/to/bench/clients/samsyn_frontend/vite.config.browsercheck.mjs
//
// 1. `@clerk/clerk-react` -> ./clerk_stub.js (Clerk's SDK loads clerk-js from Clerk's
//    servers at run time; this network is closed).
// 2. `resolve.dedupe` of react/react-dom, so the stub (outside the frontend folder) gets the
//    frontend's own React.
// 3. `import.meta.env.VITE_API_URL` (SamSyn's build-time API base URL) -> the page's
//    `window.__SAMSYN_API_URL__`, so one build can talk to a Worldbase on any loopback port
//    (the driver sets it with an init script). Same fallback as SamSyn's code otherwise.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const frontend = process.cwd();
const requireFromFrontend = createRequire(path.join(frontend, "package.json"));
// The frontend's own vite (its ES module entry), which is running this build.
const viteDir = path.dirname(requireFromFrontend.resolve("vite/package.json"));
const vite = await import(pathToFileURL(path.join(viteDir, "dist/node/index.js")).href);

const loaded = await vite.loadConfigFromFile(
	{ command: "build", mode: "production" },
	path.join(frontend, "vite.config.ts"),
	frontend,
);

export default vite.mergeConfig(loaded.config, {
	resolve: {
		alias: [
			{ find: /^@clerk\/clerk-react$/, replacement: path.join(here, "clerk_stub.js") },
		],
		dedupe: ["react", "react-dom"],
	},
	define: {
		"import.meta.env.VITE_API_URL": "window.__SAMSYN_API_URL__",
	},
});
