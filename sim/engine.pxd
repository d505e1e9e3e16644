# Type declarations for the optional compiled build of sim/engine.py (Cython "pure Python
# mode": engine.py stays the one source and runs as it is; this file only tells Cython the C
# types of the hot classes' attributes, arguments and locals). setup.py compiles a copy of
# engine.py with this file into sim._engine_compiled; sim/engine.py uses it only when it was
# built from exactly these two files (see "The compiled engine" at the end of engine.py).
#
# Keep it in step with engine.py: every attribute a class sets must be declared here (a
# compiled instance has no __dict__), with a C type only where the value is always of that
# type (double: always a number; object: may be None or anything else). The tests run the
# same configurations through both builds and require identical results.

cimport cython

cdef class RecordLog
cdef class Stock
cdef class Production
cdef class Model

@cython.locals(n=Py_ssize_t, i=Py_ssize_t, view="double[::1]")
cpdef records_array(object values, Py_ssize_t width)

cdef class RecordLog:
    cdef public Py_ssize_t width, n
    cdef public object buf
    cdef double[::1] view

    @cython.locals(n=Py_ssize_t)
    cpdef add3(self, double a, double b, double c)
    @cython.locals(n=Py_ssize_t)
    cpdef add4(self, double a, double b, double c, double d)
    @cython.locals(n=Py_ssize_t)
    cpdef add5(self, double a, double b, double c, double d, double e)
    @cython.locals(n=Py_ssize_t)
    cpdef extend(self, object values)

cdef class EventHeap:
    cdef public Py_ssize_t n
    cdef public list items
    cdef public object times, prios, eids
    cdef public double[::1] tv, pv
    cdef public Py_ssize_t[::1] ev

    @cython.locals(tj=double)
    cdef inline bint _comes_before(self, double t, double priority, Py_ssize_t eid,
                                   Py_ssize_t j)
    cdef inline _put(self, Py_ssize_t i, double t, double priority, Py_ssize_t eid,
                     object item)
    cdef inline _move(self, Py_ssize_t i, Py_ssize_t j)
    @cython.locals(i=Py_ssize_t, parent=Py_ssize_t)
    cpdef push(self, double t, double priority, Py_ssize_t eid, object item)
    @cython.locals(items=list, n=Py_ssize_t, i=Py_ssize_t, child=Py_ssize_t, right=Py_ssize_t,
                   t=double, priority=double, eid=Py_ssize_t)
    cpdef pop(self)
    cpdef bint first_before(self, tuple entry)

cdef class Lane:
    cdef public object spec, id, material, sample, rate, gate, price, qualified_at
    cdef public Py_ssize_t index
    cdef public Stock src, dst
    cdef public double share, dock_free, in_transit, cw, tariff
    cdef public bint usable, banned, avoid, priority
    cdef public Py_ssize_t closed
    cdef public RecordLog log

cdef class Stock:
    cdef public Model model
    cdef public object node, material, key, backlog, rush, prov, price
    cdef public str ptype
    cdef public RecordLog log
    cdef public object max_wait, echelon, deferred, log_array
    cdef public double on_hand, initial, backlog_qty, on_order, level, S, Q, review_days
    cdef public list lanes_in, lanes_out, active, consumers, echelon_inputs, pending
    cdef public Production producer
    cdef public bint single, partial, is_demand, waiting, track_prov, defers

    @cython.locals(producer=Production, ip=double, prod=Production, out=Stock, a=double)
    cpdef review(self, double now)
    cpdef double order_quantity(self, double ip)
    @cython.locals(lane=Lane, best=Lane, lane_=Lane, share=double)
    cpdef order(self, double qty, double now)
    @cython.locals(i=Py_ssize_t, lane=Lane, share=double, src=Stock, prod=Production,
                   queued=double, rate=double, limit=double)
    cpdef list responsive(self, list active, double qty, double now)
    @cython.locals(producer=Production, x=double)
    cpdef receive_order(self, Lane lane, double qty, double now)
    @cython.locals(lane=Lane, x=double, q=double, partial=bint)
    cpdef serve_backlog(self, double now)
    @cython.locals(producer=Production, prod=Production)
    cpdef receive(self, double qty, object prov, double now, Lane lane)
    @cython.locals(prod=Production)
    cpdef bring_up_to_date(self, double now)
    @cython.locals(t=double, qty=double, lane=Lane, prio=double, log=RecordLog)
    cpdef settle_arrivals(self, double now)

cdef class DemandStock(Stock):
    cdef public list T, C
    cdef public object epochs, sector, arrays
    cdef public Py_ssize_t n, k_next, k_e, wake_k
    cdef public Py_ssize_t wake_gen
    cdef public double L_e, priority
    cdef public bint lost, predicts
    cdef public object on_wake

    @cython.locals(kn=Py_ssize_t, k=Py_ssize_t, j=Py_ssize_t, n=Py_ssize_t, need=double)
    cpdef schedule_wake(self, double now)
    @cython.locals(gen=Py_ssize_t, k=Py_ssize_t, now=double, lev=double, ip=double)
    cpdef _wake(self, tuple value)
    @cython.locals(kn=Py_ssize_t, lev=double)
    cpdef receive(self, double qty, object prov, double now, Lane lane)

cdef class Production:
    cdef public Model model
    cdef public object node, schedule, origin, pend_event, confers, on_done
    cdef public Stock out
    cdef public list inputs, value_weights, factors, cap_log
    cdef public RecordLog log
    cdef public double rate, base_rate, batch_days, target, wip, pend_end
    cdef public bint busy, lazy, blends, blocked
    cdef public Py_ssize_t down

    @cython.locals(out=Stock, t=double, q=double, rate=double, full=double, duration=double,
                   target=double, on_hand=double, backlog=double, end=double, late=bint,
                   log=RecordLog, out_log=RecordLog)
    cpdef sync(self, double now)
    @cython.locals(out=Stock, want=double, q=double, rate=double, inp=Stock, a=double,
                   avail=double, use=double, duration=double)
    cpdef try_start(self, double now)
    @cython.locals(q=double, now=double, out=Stock)
    cpdef _done(self, tuple value)
    @cython.locals(prod=Production)
    cpdef materialize(self, double now)

cdef class Model:
    cdef public object network, scenario, demand_mode, production_mode, start, streams, seed
    cdef public object replication, env, origins, _cidx, _onehot, stocks, policy
    cdef public double prio, horizon, build_seconds, run_seconds, now
    cdef public list queue
    cdef public object eid
    cdef public EventHeap heap
    cdef public object on_arrival
    cdef public Py_ssize_t cur_eid, events
    cdef public list lanes, productions, demand_stocks, reserves
    cdef object __weakref__

    @cython.locals(src=Stock)
    cpdef ship(self, Lane lane, double qty, double now)
    @cython.locals(depart=double, arrive=double, dst=Stock, t=double, prod=Production, i=Py_ssize_t)
    cpdef dispatch(self, Lane lane, double qty, object prov, double now, double shipped_at)
    @cython.locals(queue=list, n=Py_ssize_t, now=double, heap=EventHeap)
    cpdef _loop(self, double until, Py_ssize_t limit=*)
    cpdef push(self, double t, double priority, Py_ssize_t eid, object item)
    @cython.locals(lane=Lane, qty=double)
    cpdef _arrival(self, tuple value)
    @cython.locals(lane=Lane, usable=list, active=list, tot=double)
    cpdef refresh_lanes(self, Stock st)
