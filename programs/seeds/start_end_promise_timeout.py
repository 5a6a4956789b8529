# asyncio meaning of the seed: setTimeout -> loop.call_later(0, f);
# Promise.resolve().then(f) -> a done future's done-callback (call_soon).
import asyncio


def resolved(value=None):
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


def then(fut, f):
    out = fut.get_loop().create_future()
    fut.add_done_callback(lambda done: out.set_result(f(done.result())))
    return out


async def main():
    loop = asyncio.get_running_loop()
    print("Start")
    loop.call_later(0, lambda: print("Timeout"))
    then(resolved(), lambda _: print("Promise"))
    print("End")


asyncio.run(main())
