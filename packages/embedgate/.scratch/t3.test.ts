import { before, after, describe, it } from 'node:test';
let x = 0;
before(async () => { await new Promise(r => setTimeout(r, 100)); x = 1; console.log('root before'); });
after(() => console.log('root after'));
describe('a', () => { before(() => console.log('a before, x=', x)); it('t', () => console.log('a t')); });
describe('b', () => { it('t', () => console.log('b t', x)); });
