// What a TypeScript team builds today: Express 5, express-oauth2-jwt-bearer (the same issuer, audience and role rule
// as the gateway) and http-proxy-middleware with a keep-alive agent.
// Run as a child: node --import tsx bench/servers/express-stack.ts PORT UPSTREAM_URL ISSUER_URL AUDIENCE
import { Agent } from 'node:http';
import express from 'express';
import { auth, claimCheck } from 'express-oauth2-jwt-bearer';
import { createProxyMiddleware } from 'http-proxy-middleware';

const [port, upstream, issuerBaseURL, audience] = process.argv.slice(2) as [string, string, string, string];
const ROLES = ['analyst', 'admin'];

const app = express();
app.disable('x-powered-by');
app.use(auth({ issuerBaseURL, audience, tokenSigningAlg: 'RS256' }));
app.use(claimCheck((claims) => Array.isArray(claims.roles) && claims.roles.some((role) => ROLES.includes(String(role))), 'role required'));
app.use(createProxyMiddleware({ target: upstream, agent: new Agent({ keepAlive: true, maxSockets: 256 }) }));
app.listen(Number(port), '127.0.0.1');
