# asyncio meaning: promise(executor) -> a future the executor resolves;
# p.then(f) -> add_done_callback calling f(result) and resolving a new
# future with f's return value; queue_microtask -> loop.call_soon.
import asyncio


def then(fut, f):
    out = fut.get_loop().create_future()
    fut.add_done_callback(lambda done: out.set_result(f(done.result())))
    return out


async def main():
    loop = asyncio.get_running_loop()
    f = loop.create_future()

    def fire():
        print("resolving")
        f.set_result("v")
        loop.call_soon(lambda: print("callback queued after resolve"))

    loop.call_later(0.010, fire)

    def then1(v):
        print("then 1 got", v)
        return "x"

    then(then(f, then1), lambda v: print("then 1b got", v))
    then(f, lambda v: print("then 2 got", v))
    v = await f
    print("main resumed with", v)
    await asyncio.sleep(0.010)


asyncio.run(main())
