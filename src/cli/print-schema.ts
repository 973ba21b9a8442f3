/** Prints the subgraph SDL (federation directives included): `npm run schema` writes it to schema.graphql. */
import 'reflect-metadata';
import { printSubgraphSchema } from '@apollo/subgraph';
import { buildSubgraph } from '../schema';

void buildSubgraph().then((schema) => process.stdout.write(printSubgraphSchema(schema)));
