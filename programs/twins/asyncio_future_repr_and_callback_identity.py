import asyncio

async def main():
    loop = asyncio.get_running_loop()
    pending = loop.create_future()
    done = loop.create_future()
    done.set_result([1, "two"])
    failed = loop.create_future()
    failed.set_exception(ValueError("bad"))
    cancelled = loop.create_future()
    cancelled.cancel()
    print(pending)
    print(done)
    print(failed)
    print(cancelled)
    try:
        await failed
    except Exception as e:
        print("retrieved", type(e).__name__)
    def mine(f):
        print("mine called")
    for cb in [print, asyncio.sleep, mine]:
        pending.add_done_callback(cb)
        print("removed:", pending.remove_done_callback(cb), pending.remove_done_callback(cb))
    pending.cancel()
    await asyncio.sleep(0)
    print(pending, "callbacks ran: none")

asyncio.run(main())
