import asyncio

async def inner():
    await asyncio.sleep(0.020)
    print("inner finished")
    return "inner result"

async def sleeper():
    await asyncio.sleep(0.100)

async def main():
    it = asyncio.create_task(inner())
    async def outer():
        try:
            await asyncio.shield(it)
        finally:
            print("outer finally, inner done:", it.done())
    o = asyncio.create_task(outer())
    await asyncio.sleep(0.005)
    o.cancel()
    await asyncio.sleep(0.001)
    print("outer cancelled:", o.cancelled(), "inner cancelled:", it.cancelled())
    print("inner result:", await it)

    t = asyncio.create_task(sleeper())
    await asyncio.sleep(0.001)
    print("cancel:", t.cancel("stop now"), "cancelling:", t.cancelling())
    print("again:", t.cancel("second"), "cancelling:", t.cancelling(), "uncancel:", t.uncancel())
    f = asyncio.get_running_loop().create_future()
    f.cancel("future message")
    r = await asyncio.gather(t, f, return_exceptions=True)
    print("task message:", r[0].args[0] if r[0].args else "", "future message:", r[1].args[0], type(r[1]).__name__)
    me = asyncio.current_task()
    print("main is", "task", me.done(), me.cancelling())

    def report(task):
        print("done callback:", task.cancelled())
    def never(task):
        print("never called")
    u = asyncio.create_task(sleeper())
    u.add_done_callback(report)
    u.add_done_callback(never)
    u.add_done_callback(never)
    print("removed:", u.remove_done_callback(never), u.remove_done_callback(never))
    u.cancel()
    await asyncio.sleep(0)
    print("after one iteration")
    await asyncio.sleep(0)
    print("main ends")

asyncio.run(main())
