// A test sign-in stub standing in for `@clerk/clerk-react` in SamSyn's frontend build.
//
// Clerk's React SDK loads clerk-js from Clerk's servers at run time, so it cannot run on a
// closed network. The browser check (bench/clients/samsyn_frontend/drive.py) builds SamSyn's
// frontend with a vite alias `@clerk/clerk-react` -> this file. It exports what SamSyn
// imports from Clerk (ClerkProvider, SignedIn, SignedOut, SignInButton, UserButton, useUser,
// useAuth) plus a few neighbours, with the same shapes.
//
// Identity comes from the page, put there by the driver before any script runs
// (Playwright `add_init_script`):
//   window.__TEST_CLERK__ = {
//     token: "<RS256 session JWT the driver signed>",
//     user: { id: "user_...", email: "...", fullName: "...", firstName: "...",
//             lastName: "...", publicMetadata: { isAdmin: true } },
//   }
// Signed-out until the "Sign In" button (SignInButton's child) is clicked: the click records
// the sign-in in localStorage and reloads the page, as Clerk's modal hands back a session.
// `getToken()` then resolves to the driver's token (a Clerk session token), else null.
import React from "react";

const SIGNED_IN_KEY = "__test_clerk_signed_in";

function identity() {
	const data = (typeof window !== "undefined" && window.__TEST_CLERK__) || null;
	return data && data.token && data.user ? data : null;
}

function signedIn() {
	const data = identity();
	if (!data) return false;
	try {
		return window.localStorage.getItem(SIGNED_IN_KEY) === data.user.id;
	} catch {
		return false;
	}
}

function clerkUser() {
	const data = identity();
	if (!data || !signedIn()) return null;
	const u = data.user;
	const email = { id: "idn_test", emailAddress: u.email };
	return {
		id: u.id,
		firstName: u.firstName ?? null,
		lastName: u.lastName ?? null,
		fullName: u.fullName ?? null,
		username: u.username ?? null,
		imageUrl: "",
		hasImage: false,
		primaryEmailAddressId: email.id,
		primaryEmailAddress: email,
		emailAddresses: [email],
		publicMetadata: u.publicMetadata ?? {},
		unsafeMetadata: {},
		createdAt: u.createdAt ? new Date(u.createdAt) : new Date(),
	};
}

// Stable across renders, as Clerk's is (SamSyn memoises its API client on it).
async function getToken() {
	const data = identity();
	return data && signedIn() ? data.token : null;
}

async function signOut() {
	try {
		window.localStorage.removeItem(SIGNED_IN_KEY);
	} catch {
		// nothing to forget
	}
	window.location.reload();
}

function signIn() {
	const data = identity();
	if (!data) {
		console.warn("[clerk-stub] no test identity on the page: cannot sign in");
		return;
	}
	window.localStorage.setItem(SIGNED_IN_KEY, data.user.id);
	window.location.reload();
}

export function ClerkProvider({ children }) {
	return React.createElement(React.Fragment, null, children);
}

export function ClerkLoaded({ children }) {
	return React.createElement(React.Fragment, null, children);
}

export function ClerkLoading() {
	return null;
}

export function SignedIn({ children }) {
	return signedIn() ? React.createElement(React.Fragment, null, children) : null;
}

export function SignedOut({ children }) {
	return signedIn() ? null : React.createElement(React.Fragment, null, children);
}

export function SignInButton({ children }) {
	const child = React.isValidElement(children)
		? children
		: React.createElement("button", { type: "button" }, children || "Sign in");
	return React.cloneElement(child, {
		"data-testid": "clerk-stub-sign-in",
		onClick: signIn,
	});
}

export function SignOutButton({ children }) {
	const child = React.isValidElement(children)
		? children
		: React.createElement("button", { type: "button" }, children || "Sign out");
	return React.cloneElement(child, { onClick: signOut });
}

export function UserButton() {
	const user = clerkUser();
	if (!user) return null;
	const initials = (user.fullName || user.primaryEmailAddress.emailAddress)
		.split(/\s+/)
		.map((part) => part[0])
		.join("")
		.slice(0, 2)
		.toUpperCase();
	return React.createElement(
		"button",
		{
			type: "button",
			title: `${user.fullName || ""} <${user.primaryEmailAddress.emailAddress}> (test sign-in stub)`,
			"data-testid": "clerk-stub-user-button",
			onClick: signOut,
			style: {
				width: 32,
				height: 32,
				borderRadius: "50%",
				background: "#0d9488",
				color: "white",
				fontSize: 12,
				fontWeight: 600,
				border: "none",
			},
		},
		initials,
	);
}

export function RedirectToSignIn() {
	return null;
}

export function useUser() {
	const user = clerkUser();
	return { isLoaded: true, isSignedIn: !!user, user };
}

export function useAuth() {
	const user = clerkUser();
	return {
		isLoaded: true,
		isSignedIn: !!user,
		userId: user ? user.id : null,
		sessionId: user ? "sess_test_stub" : null,
		orgId: null,
		getToken,
		signOut,
	};
}

export function useSession() {
	const user = clerkUser();
	return {
		isLoaded: true,
		isSignedIn: !!user,
		session: user ? { id: "sess_test_stub", user, getToken } : null,
	};
}

export function useClerk() {
	return {
		loaded: true,
		user: clerkUser(),
		session: null,
		signOut,
		openSignIn: signIn,
		redirectToSignIn: signIn,
	};
}
