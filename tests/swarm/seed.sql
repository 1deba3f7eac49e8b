-- The source database tests/swarm.sh drills through deploy/stack.yml: two tables whose
-- rows and foreign key the drill's assertions check after the restore.
create table customers (
    id    integer primary key,
    name  text not null,
    email text not null unique
);
create table orders (
    id          bigint primary key,
    customer_id integer not null references customers (id),
    placed_at   timestamptz not null,
    total       numeric(10, 2) not null
);
insert into customers
select i, 'customer ' || i, 'c' || i || '@example.test'
from generate_series(1, 500) as i;
insert into orders
select i, 1 + i % 500, timestamptz '2026-01-01' + i * interval '1 minute', (i % 997) / 10.0
from generate_series(1, 5000) as i;
